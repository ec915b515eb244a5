"""Sparse building blocks shared by the item-CF and user-CF recall channels.

Everything here is vectorised with numpy / scipy.sparse: no per-user Python loops. Ragged
inputs use the ``offsets[B+1]`` + flat values layout of ``funnelrec.ragged``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates, Query

F64Array = npt.NDArray[np.float64]


def user_weights(lengths: IntArray, kind: str) -> F64Array:
    """Inverse user frequency: how much one user's pairs count, ``[n_users]``.

    Args:
        lengths: ``[n_users]`` history length of every user.
        kind: ``"none"`` (1), ``"log"`` (``1 / log(1 + n)``) or ``"linear"`` (``1 / n``).
    """
    n = np.maximum(lengths.astype(np.float64), 1.0)
    if kind == "log":
        return 1.0 / np.log1p(n)
    if kind == "linear":
        return 1.0 / n
    return np.ones_like(n)


def sequence_pairs(
    offsets: IntArray,
    ts: F64Array,
    distance: int,
) -> tuple[IntArray, IntArray, F64Array]:
    """Flat positions of every pair of events ``distance`` apart in the same user's sequence.

    Args:
        offsets: ``[n_users+1]`` sequence boundaries.
        ts: ``[N]`` event timestamps (sequence order).
        distance: position offset ``d >= 1``.

    Returns:
        ``(earlier[P], later[P], abs_dt[P])``: flat positions of the earlier and later event of
        each pair and the absolute time between them.
    """
    pos = ragged.position_in_row(offsets)
    lens = ragged.lengths(offsets)[ragged.row_ids(offsets)]
    earlier = np.flatnonzero(pos + distance < lens).astype(np.int64)
    later = earlier + distance
    return earlier, later, np.abs(ts[later] - ts[earlier])


def coo_sum(
    rows: IntArray, cols: IntArray, values: F64Array, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR matrix summing ``values`` at ``(rows, cols)``, diagonal entries dropped."""
    off_diag = rows != cols
    mat = sp.csr_matrix(
        (values[off_diag], (rows[off_diag], cols[off_diag])), shape=shape, dtype=np.float64
    )
    mat.sum_duplicates()
    return mat


def row_topn(mat: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest positive entries of every row of a CSR matrix.

    Args:
        mat: ``[R, C]`` CSR matrix.
        n: entries kept per row.

    Returns:
        ``[R, C]`` CSR matrix with at most ``n`` stored entries per row, zeros removed.
    """
    mat = sp.csr_matrix(mat)
    mat.eliminate_zeros()
    indptr = mat.indptr.astype(np.int64)
    order = ragged.sort_within_rows(indptr, mat.data)
    keep = order[ragged.first_k_mask(indptr, n)]
    keep = keep[mat.data[keep] > 0]
    rows = ragged.row_ids(indptr)[keep]
    out = sp.csr_matrix((mat.data[keep], (rows, mat.indices[keep])), shape=mat.shape)
    out.sort_indices()
    return out


def recent_matrix(
    query: Query, n_items: int, last: int | None, decay: float
) -> sp.csr_matrix:
    """Recency-weighted sparse history of a batch of queries.

    The ``r``-th most recent item (``r = 0`` for the latest) weighs ``decay ** r``; only the
    last ``last`` items count (all when ``None``). Repeated items add up; items outside the
    fitted catalogue (``>= n_items``) are ignored.

    Args:
        query: batch of ``B`` queries.
        n_items: catalogue size of the fitted model.
        last: number of recent items used per query.
        decay: recency decay in ``(0, 1]``.

    Returns:
        ``[B, n_items]`` CSR matrix.
    """
    if last is None:
        offsets, items = query.history_offsets, query.history_items
    else:
        offsets, items, _ = query.recent_history(last)
    rows = ragged.row_ids(offsets)
    from_end = ragged.lengths(offsets)[rows] - 1 - ragged.position_in_row(offsets)
    weight = np.power(decay, from_end.astype(np.float64))
    ok = (items >= 0) & (items < n_items)
    mat = sp.csr_matrix(
        (weight[ok], (rows[ok], items[ok])), shape=(query.batch_size, n_items), dtype=np.float64
    )
    mat.sum_duplicates()
    return mat


def sparse_topk(scores: sp.csr_matrix, query: Query, k: int, channel: str) -> Candidates:
    """Top ``k`` positive entries per row of a sparse ``[B, n_items]`` score matrix.

    Never densifies the matrix: only stored, positive, non-excluded entries are candidates,
    so a row may hold fewer than ``k`` items. Ties keep ascending item order.

    Args:
        scores: ``[B, n_items]`` CSR scores (one row per query).
        query: the batch, for its exclusion lists.
        k: items wanted per row.
        channel: provenance name.
    """
    mat = sp.csr_matrix(scores)
    mat.sum_duplicates()
    mat.sort_indices()
    cands = Candidates.from_flat(mat.indptr.astype(np.int64), mat.indices, mat.data, channel)
    return cands.filter(cands.scores > 0).excluding(query).topk(k)
