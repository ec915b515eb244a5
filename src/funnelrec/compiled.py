"""numba compilation shared by the compiled CPU kernels (``train.adam_rows``,
``models.dropout``): no GIL, machine code cached on disk where a cache is writable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def compiled(fn: Callable[..., Any], *, parallel: bool = False) -> Callable[..., Any]:
    """``fn`` compiled (GIL released; ``parallel``: its ``numba.prange`` loops split over
    numba's threads), its machine code cached on disk (~0.3 s to load vs ~0.8 s to compile);
    where no cache directory is writable (a read-only install without a writable home),
    compiled again in each process rather than failing at import."""
    try:
        return numba.njit(parallel=parallel, cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(parallel=parallel, nogil=True)(fn)
