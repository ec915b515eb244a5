"""The recent history of a query batch as a sparse ``[B, n_items]`` matrix."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.types import Query


def history_matrix(
    query: Query,
    last: int,
    n_items: int,
    usable: npt.NDArray[np.bool_] | None = None,
    recency: bool = False,
) -> sp.csr_matrix:
    """``[B, n_items]`` CSR of each row's last ``last`` items within ``[0, n_items)`` (and
    ``usable``, when given): ones, or with ``recency`` the position in the window over
    ``last`` (newest highest). Repeated items keep one entry (their sum)."""
    off, items, _ = query.recent_history(last)
    ok = (items >= 0) & (items < n_items)
    if usable is not None:
        ok[ok] = usable[items[ok]]
    values = (ragged.position_in_row(off) + 1) / max(last, 1) if recency else np.ones(len(items))
    mat = sp.csr_matrix(
        (values[ok].astype(np.float32), (ragged.row_ids(off)[ok], items[ok])),
        shape=(query.batch_size, n_items),
    )
    mat.sum_duplicates()
    return mat
