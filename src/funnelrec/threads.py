"""One ``threads`` setting for every thread pool a funnel uses: torch, BLAS and Faiss.

Left alone, torch (intra-op and inter-op pools), the BLAS under numpy/scipy (OpenBLAS/MKL,
through ``threadpoolctl``) and Faiss (OpenMP) each size themselves to the machine, and on a
small or shared machine they oversubscribe its cores. ``apply_threads`` sets all of them to one
number, once, at the start of ``fit`` / ``evaluate`` / ``serve`` (CLI ``--threads``, the
config's top-level ``threads``, or the ``FUNNELREC_THREADS`` environment variable, in that
order of precedence; then ``OMP_NUM_THREADS``, then every CPU). A stage's own ``threads``
parameter still overrides torch's pool while that stage trains. numba kernels
(``train.adam_rows``) take torch's pool size at each launch, so they follow both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from funnelrec.errors import ConfigError

ENV_VAR = "FUNNELREC_THREADS"
_OMP_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_T = TypeVar("_T")
_R = TypeVar("_R")
_applied: int | None = None  # the last apply_threads value (None: never applied)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_threads(explicit: int | None = None, configured: int | None = None) -> int:
    """The thread count to use: ``explicit`` (CLI), else ``FUNNELREC_THREADS``, else
    ``configured`` (config file), else ``OMP_NUM_THREADS``, else every available CPU.

    Raises:
        ConfigError: a value below 1, or an environment value that is not an integer.
    """
    raw = os.environ.get(ENV_VAR)
    env: int | None = None
    if raw not in (None, ""):
        try:
            env = int(str(raw))
        except ValueError:
            raise ConfigError(f"{ENV_VAR} must be an integer, got {raw!r}") from None
    for source, value in (("--threads", explicit), (ENV_VAR, env), ("threads", configured)):
        if value is not None:
            if value < 1:
                raise ConfigError(f"{source} must be >= 1, got {value}")
            return value
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return int(omp) if omp.isdigit() and int(omp) > 0 else available_cpus()


def apply_threads(
    explicit: int | None = None, configured: int | None = None, export: bool = True
) -> int:
    """Size torch's intra-/inter-op pools, the BLAS pools and Faiss's OpenMP pool to one
    number (see ``resolve_threads``) and, with ``export``, hand it to child processes
    through the environment; returns it."""
    global _applied
    n = resolve_threads(explicit, configured)
    _applied = n
    if export:
        os.environ[ENV_VAR] = str(n)
        for var in _OMP_VARS:
            os.environ[var] = str(n)
    _torch(n)
    _blas(n)
    _faiss(n)
    return n


def current_threads() -> int:
    """The thread count in force: the last ``apply_threads`` value, else ``resolve_threads()``."""
    return _applied if _applied is not None else resolve_threads()


def map_in_threads(
    fn: Callable[[_T], _R], work: Iterable[_T], threads: int | None = None
) -> list[_R]:
    """``[fn(w) for w in work]``, run on up to ``threads`` (default ``current_threads()``)
    threads: for independent numpy/scipy pieces (their kernels release the GIL). The results
    are in ``work``'s order and the same as the serial loop's whatever the thread count; one
    thread (or one piece) runs the plain loop."""
    items = list(work)
    n = min(current_threads() if threads is None else threads, len(items))
    if n <= 1:
        return [fn(w) for w in items]
    with ThreadPoolExecutor(n, thread_name_prefix="funnelrec") as pool:
        return list(pool.map(fn, items))


def _torch(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # settable only before inter-op work starts
        torch.set_num_interop_threads(n)


def _blas(n: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # stays in force (not used as a context manager)


def _faiss(n: int) -> None:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is a dependency, but stay usable without
        return
    faiss.omp_set_num_threads(n)
