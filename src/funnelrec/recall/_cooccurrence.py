"""Sparse building blocks shared by the item-CF and user-CF recall channels.

Everything here is vectorised with numpy / scipy.sparse: no per-user Python loops. Ragged
inputs use the ``offsets[B+1]`` + flat values layout of ``funnelrec.ragged``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.recall.base import top_entries, top_mask
from funnelrec.threads import map_in_threads
from funnelrec.types import Candidates, Query

F64Array = npt.NDArray[np.float64]
TieRule = Literal["any", "lowest", "keep"]

# Cells of one dense block when cutting long rows to their top entries (4 M floats = 32 MB).
MAX_CELLS = 1 << 22
# Pairs buffered by ``PairSum`` before they are summed into its sparse total.
MAX_PENDING = 1 << 24


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


def events_after(offsets: IntArray) -> IntArray:
    """Number of later events in the same row for every flat event, ``[N]``."""
    lens = ragged.lengths(offsets)[ragged.row_ids(offsets)]
    return lens - 1 - ragged.position_in_row(offsets)


def window_pairs(offsets: IntArray, window: int) -> tuple[IntArray, IntArray]:
    """Every pair of events at most ``window`` positions apart in the same row, at once.

    Args:
        offsets: ``[R+1]`` row offsets of the flat events.
        window: largest position offset.

    Returns:
        ``(earlier[P], distance[P])``: flat position of the earlier event of each pair and the
        offset ``1..window`` to the later one (``later = earlier + distance``), grouped by
        distance, earlier event ascending within each (``pairs_by_distance`` concatenated).
    """
    parts = list(pairs_by_distance(offsets, window))
    earlier = np.concatenate([np.zeros(0, dtype=np.int64), *(e for _, e in parts)])
    distance = np.repeat(np.arange(1, window + 1, dtype=np.int64), [len(e) for _, e in parts])
    return earlier, distance


def pairs_by_distance(offsets: IntArray, window: int) -> Iterator[tuple[int, IntArray]]:
    """``(d, earlier)`` for ``d = 1..window``: flat positions of the events that have a later
    event ``d`` positions on in the same row (one vectorised pass per distance; no
    ``[P]``-sized index arrays for all pairs at once)."""
    after = events_after(offsets)
    for d in range(1, window + 1):
        yield d, np.flatnonzero(after >= d)


def coo_sum(
    rows: IntArray,
    cols: IntArray,
    values: F64Array,
    shape: tuple[int, int],
    drop_diagonal: bool = True,
) -> sp.csr_matrix:
    """CSR matrix summing ``values`` at ``(rows, cols)``, diagonal entries dropped (unless
    ``drop_diagonal`` is false: rows are then local to a block, see ``RowBlockPairSum``)."""
    off_diag = rows != cols if drop_diagonal else np.ones(0, dtype=np.bool_)
    if not off_diag.all():  # (no copies when the caller dropped them already)
        rows, cols, values = rows[off_diag], cols[off_diag], values[off_diag]
    mat = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float64)
    mat.sum_duplicates()
    return mat


class PairSum:
    """Sums weighted ``(row, col)`` pairs into a CSR matrix, diagonal dropped.

    Pairs are buffered and folded into the running sum once the buffer holds ``MAX_PENDING``
    pairs, so memory stays near the size of the result even for many or long sequences.
    """

    def __init__(self, shape: tuple[int, int], drop_diagonal: bool = True) -> None:
        self.shape = shape
        self.drop_diagonal = drop_diagonal
        self.total = sp.csr_matrix(shape, dtype=np.float64)
        self._pending: list[tuple[IntArray, IntArray, F64Array]] = []
        self._n_pending = 0

    def add(self, rows: IntArray, cols: IntArray, values: F64Array) -> None:
        """Add pairs (three aligned ``[P]`` arrays)."""
        self.queue(rows, cols, values)
        if self._n_pending >= MAX_PENDING:
            self.fold()

    def queue(self, rows: IntArray, cols: IntArray, values: F64Array) -> None:
        """Buffer pairs without the fold check (``RowBlockPairSum`` decides when to fold)."""
        self._pending.append((rows, cols, values))
        self._n_pending += len(rows)

    def result(self) -> sp.csr_matrix:
        """The ``shape`` CSR sum of every pair added so far."""
        self.fold()
        return self.total

    def fold(self) -> None:
        """Sum the buffered pairs into the running total."""
        if not self._pending:
            return
        if len(self._pending) == 1:
            rows, cols, vals = self._pending[0]
        else:
            rows, cols, vals = (np.concatenate(p) for p in zip(*self._pending, strict=True))
        summed = coo_sum(rows, cols, vals, self.shape, self.drop_diagonal)
        self.total = summed if self.total.nnz == 0 else sp.csr_matrix(self.total + summed)
        self._pending, self._n_pending = [], 0


class RowBlockPairSum:
    """``PairSum`` split into contiguous row blocks ``bounds`` ``[K+1]``: each block sums its
    rows' pairs and folds when the whole buffer holds ``MAX_PENDING`` pairs, exactly when one
    ``PairSum`` would, so every row is bit-identical to one ``PairSum``'s; but a fold merges
    one block per thread at a time (``funnelrec.threads``), so peak memory is the sum plus a
    block per thread, not two whole sums."""

    def __init__(self, bounds: IntArray, n_cols: int) -> None:
        self.bounds = np.asarray(bounds, dtype=np.int64)
        if len(self.bounds) < 2 or self.bounds[0] != 0:
            raise ValueError(f"row blocks must start at row 0, got bounds {self.bounds[:3]}...")
        spans = zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True)
        self.parts = [PairSum((hi - lo, n_cols), drop_diagonal=False) for lo, hi in spans]
        # block of every row, [bounds[-1]]; small ints, which numpy's stable sort radix-sorts
        small = np.int16 if len(self.parts) <= np.iinfo(np.int16).max else np.int64
        self._block_of = np.repeat(np.arange(len(self.parts), dtype=small), np.diff(self.bounds))
        self._n_pending = 0

    def add(self, rows: IntArray, cols: IntArray, values: F64Array, fold: bool = True) -> None:
        """Add pairs (three aligned ``[P]`` arrays, global row ids); ``fold=False`` leaves the
        fold check to ``fold_if_full`` (several slices then count as one add)."""
        off_diag = rows != cols
        if not off_diag.all():
            rows, cols, values = rows[off_diag], cols[off_diag], values[off_diag]
        if len(self.parts) == 1:
            self.parts[0].queue(rows, cols, values)
        else:
            block = self._block_of[rows]
            order = np.argsort(block, kind="stable")  # keeps each row's pairs in order
            ends = np.cumsum(np.bincount(block, minlength=len(self.parts)))
            starts = np.concatenate([[0], ends[:-1]])
            for k, part in enumerate(self.parts):
                pick = order[starts[k] : ends[k]]
                if len(pick):
                    local = rows[pick] - rows.dtype.type(self.bounds[k])
                    part.queue(local, cols[pick], values[pick])
            del block, order
        self._n_pending += len(rows)  # the whole buffer, all blocks: PairSum's fold rule
        if fold:
            self.fold_if_full()

    def fold_if_full(self) -> None:
        """Fold every block once the buffer holds ``MAX_PENDING`` pairs (as ``PairSum.add``)."""
        if self._n_pending >= MAX_PENDING:
            self._fold()

    def result(self) -> list[sp.csr_matrix]:
        """The row blocks' CSR sums, ``[hi - lo, n_cols]`` each, in order."""
        self._fold()
        return [part.result() for part in self.parts]

    def _fold(self) -> None:
        map_in_threads(PairSum.fold, self.parts)  # independent blocks: one per thread
        self._n_pending = 0


def row_topn(
    mat: sp.spmatrix | sp.sparray,
    n: int,
    copy: bool = True,
    dtype: type = np.float64,
    ties: TieRule = "lowest",
) -> sp.csr_matrix:
    """Keep the ``n`` largest positive entries of every row of a sparse matrix.

    Rows with more than ``n`` entries are padded into dense blocks (rows of similar length
    together, at most about ``MAX_CELLS`` cells each) and cut with a partition: no full
    sort. The kept entries are in column order.

    Args:
        mat: ``[R, C]`` sparse matrix.
        n: entries kept per row.
        copy: ``False`` lets a float64 CSR ``mat`` be reused (its values changed) instead of
            copied: for callers that own it.
        dtype: of the returned values (the cut is made on float64 values).
        ties: which entries tied with a row's ``n``-th largest value are kept: ``"lowest"``
            columns first (exactly ``n``), ``"keep"`` all of them (``n`` or more); with either,
            a row's result depends on that row alone. ``"any"``: whichever ``argpartition``
            leaves (exactly ``n``, a little faster), which depends on the padded block's width,
            so on the other rows of the call (the item-CF graph's rule, as its rows were
            recorded).

    Returns:
        ``[R, C]`` CSR matrix with at most ``n`` stored entries per row (more only for
        ``"keep"``), all positive.
    """
    csr = sp.csr_matrix(mat, dtype=np.float64, copy=copy)
    csr.sum_duplicates()  # canonical: indices sorted within rows
    csr.data[csr.data < 0] = 0
    csr.eliminate_zeros()
    indptr = csr.indptr.astype(np.int64)
    keep = np.ones(csr.nnz, dtype=np.bool_)
    lens = np.diff(indptr)
    long_rows = np.flatnonzero(lens > n)
    # rows of similar length share a block: widths within a factor 2, little padding
    bucket = np.ceil(np.log2(lens[long_rows])).astype(np.int64)
    for b in np.unique(bucket):
        rows = long_rows[bucket == b]
        step = max(1, MAX_CELLS >> int(b))
        for lo in range(0, len(rows), step):
            _mark_topn(indptr, csr.data, rows[lo : lo + step], n, keep, ties)
    kept = np.diff(np.concatenate([[0], np.cumsum(keep)])[indptr])
    out = sp.csr_matrix(
        (csr.data[keep].astype(dtype), csr.indices[keep], ragged.offsets_from_lengths(kept)),
        shape=csr.shape,
    )
    out.has_sorted_indices = True  # a mask keeps each row's column order
    return out


def _mark_topn(
    indptr: IntArray, data: F64Array, rows: IntArray, n: int, keep: BoolArray, ties: TieRule
) -> None:
    """Set ``keep`` to the ``n`` largest entries of each of ``rows`` (all longer than ``n``;
    ``ties`` as in ``row_topn``)."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    sub_off = ragged.offsets_from_lengths(lens)
    block_row = ragged.row_ids(sub_off)
    pos = np.arange(int(sub_off[-1]), dtype=np.int64) - sub_off[block_row]
    flat = starts[block_row] + pos
    block = np.full((len(rows), int(lens.max())), -np.inf)
    block[block_row, pos] = data[flat]
    if ties == "any":
        keep[flat] = False
        np.negative(block, out=block)  # (in place: the block is a temporary)
        top = np.argpartition(block, n - 1, axis=1)[:, :n]
        keep[(starts[:, None] + top).ravel()] = True
        return
    # block columns are in column order, so "lowest" keeps the lowest columns among ties
    keep[flat] = top_mask(block, n, keep_ties=ties == "keep")[block_row, pos]


def recent_matrix(
    query: Query, n_items: int, last: int | None, decay: float, floor: float = 0.0
) -> sp.csr_matrix:
    """Recency-weighted sparse history of a batch of queries.

    The ``r``-th most recent item (``r = 0`` for the latest) weighs ``decay ** r + floor``; only the
    last ``last`` items count (all when ``None``). Repeated items add up; items outside the
    fitted catalogue (``>= n_items``) are ignored.

    Args:
        query: batch of ``B`` queries.
        n_items: catalogue size of the fitted model.
        last: number of recent items used per query.
        decay: recency decay in ``(0, 1]``.
        floor: weight added to every used item (long-term interest).

    Returns:
        ``[B, n_items]`` CSR matrix.
    """
    if last is None:
        offsets, items = query.history_offsets, query.history_items
    else:
        offsets, items, _ = query.recent_history(last)
    rows = ragged.row_ids(offsets)
    from_end = ragged.lengths(offsets)[rows] - 1 - ragged.position_in_row(offsets)
    weight = np.power(decay, from_end.astype(np.float64)) + floor
    ok = (items >= 0) & (items < n_items)
    mat = sp.csr_matrix(
        (weight[ok], (rows[ok], items[ok])), shape=(query.batch_size, n_items), dtype=np.float64
    )
    mat.sum_duplicates()
    return mat


def sparse_topk(scores: sp.spmatrix | sp.sparray, query: Query, k: int, channel: str) -> Candidates:
    """Top ``k`` positive entries per row of a sparse ``[B, n_items]`` score matrix.

    Never densifies the matrix: only stored, positive, non-excluded entries are candidates,
    so a row may hold fewer than ``k`` items. Ties at the cut keep the lowest items, as the
    dense path does: a row's answer depends on that row alone.

    Args:
        scores: ``[B, n_items]`` scores (one row per query).
        query: the batch, for its exclusion lists.
        k: items wanted per row.
        channel: provenance name.

    Returns:
        Candidates sorted by descending score (ties in ascending item order). Small, dense
        enough batches (serving) take a dense path (``top_entries``), same answer.
    """
    batch, n_cols = scores.shape
    if ragged.use_dense(batch, n_cols, 4 * scores.nnz):
        return _dense_positive_topk(scores, query, k, channel)
    mat = sp.csr_matrix(scores, dtype=np.float64, copy=True)
    mat.sum_duplicates()
    indptr = mat.indptr.astype(np.int64)
    banned = ragged.membership(
        indptr, mat.indices.astype(np.int64), query.exclude_offsets, query.exclude_items
    )
    mat.data[banned] = 0.0
    top = row_topn(mat, k, ties="lowest")
    cands = Candidates.from_flat(top.indptr.astype(np.int64), top.indices, top.data, channel)
    return cands.sorted()


def _dense_positive_topk(
    scores: sp.spmatrix | sp.sparray, query: Query, k: int, channel: str
) -> Candidates:
    """``sparse_topk`` through a dense ``[B, n_items]`` block (positive entries only)."""
    dense = np.asarray(scores.toarray(), dtype=np.float64)
    rows = ragged.row_ids(query.exclude_offsets)
    inside = (query.exclude_items >= 0) & (query.exclude_items < dense.shape[1])
    dense[rows[inside], query.exclude_items[inside]] = 0.0
    dense[~(dense > 0)] = -np.inf
    return top_entries(dense, k, channel)
