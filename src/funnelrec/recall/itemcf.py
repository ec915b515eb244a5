"""Item-CF recall over a weighted, sequence-aware item→item co-occurrence graph.

The graph ``S[i, j]`` ("a user who had ``i`` will like ``j``") is built from every user's
time-ordered history (``Dataset.sequences``) with numpy / scipy.sparse only: one vectorised pass
per position offset, no per-user loop. It has two parts:

* a **sequential** part: pairs of events at most ``window`` positions apart, weighted by
  ``position_decay ** (d - 1)`` for a distance ``d``, by the time between the events
  (``2 ** (-dt / time_half_life)``) and by direction (``forward_weight`` when ``j`` comes
  after ``i``, ``backward_weight`` when before);
* a **global** part: every co-occurrence in a history, whatever the distance, times
  ``global_weight`` (classic item-CF);

each pair also weighs ``user_weight`` of its user (inverse user frequency). Then the raw
weights are normalised (cosine with asymmetry ``alpha``, Jaccard or none), divided by the target
item's popularity to the power ``pop_penalty``, and pruned to the ``n_neighbours`` best per item.

A batch of queries is scored by one sparse product: the recency-weighted last ``history_len``
items of each query (``[B, n_items]``) times ``S``; the top ``k`` positive, non-excluded scores
of each row are returned. Users without history get an empty row.

``fit_stream`` builds the same graph from a Parquet log too large for memory: chunks of whole
users, each chunk's pair sums spilled per block of source items, then each block summed,
normalised and pruned (memory set by ``chunk_rows`` and ``max_pairs``, one pass over the log).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from funnelrec import needs, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.data.streaming import ParquetInteractions, item_counts
from funnelrec.ragged import IntArray
from funnelrec.recall._cooccurrence import (
    F64Array,
    RowBlockPairSum,
    pairs_by_distance,
    recent_matrix,
    row_topn,
    sparse_topk,
    user_weights,
)
from funnelrec.recall.base import MatrixScoredChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.threads import map_in_threads
from funnelrec.types import Candidates, Query

# fit: raw pairs (both directions) of one block of source items. Smaller blocks touch less
# fresh memory, which a one-off fit pays for on a VM (the itemcf-memory rows of
# benchmarks/scale.py report a cold and a warm fit).
BLOCK_PAIRS = 6_250_000
PAIR_SLICE = 1 << 20  # pairs enumerated at a time (memory; the sums do not depend on it)


class ItemCFParams(Params):
    """Parameters of ``itemcf``. Defaults were tuned on the validation part of ml-100k and
    Amazon Beauty under ``loo`` (next-item prediction); see ``benchmarks/recall.py`` for the
    ``rs811`` override (whole history, no recency decay).

    Attributes:
        window: pairs of events at most this many positions apart form the sequential part.
        position_decay: a pair ``d`` positions apart weighs ``position_decay ** (d - 1)``.
        forward_weight: weight of ``i → j`` when ``j`` happened after ``i``.
        backward_weight: weight of ``i → j`` when ``j`` happened before ``i``.
        time_half_life: pair weight halves every this many timestamp units (seconds for real
            logs) between the two events; ``None`` = no time decay. Sequential part only.
        global_weight: weight of every co-occurrence in a history regardless of distance and
            order (classic, symmetric item-CF); 0 disables the global part, whose cost grows
            with the sum of squared history lengths.
        user_weight: inverse user frequency, how much one user's pairs count: ``"none"``,
            ``"log"`` (``1 / log(1 + |history|)``) or ``"linear"`` (``1 / |history|``).
        normalization: ``"cosine"`` (``C_ij / (n_i ** alpha * n_j ** (1 - alpha))``),
            ``"jaccard"`` (``C_ij / (n_i + n_j - C_ij)``) or ``"none"``, where ``C_ij`` is the
            raw pair weight and ``n_i`` the item's user-weighted event count.
        alpha: asymmetry of the cosine: 0.5 is the plain cosine; above 0.5 popular targets
            ``j`` are penalised less (and popular sources ``i`` more).
        pop_penalty: extra division by ``n_j ** pop_penalty`` (penalises popular targets).
        n_neighbours: neighbours kept per source item (sparse top-N).
        history_len: number of most recent history items used to score a query
            (``None`` = all).
        recency_decay: the ``r``-th most recent history item (0 = latest) weighs
            ``recency_decay ** r + history_floor``.
        history_floor: weight added to every used history item (long-term interest).
    """

    window: int = Field(default=10, ge=1)
    position_decay: float = Field(default=0.9, gt=0, le=1)
    forward_weight: float = Field(default=1.0, ge=0)
    backward_weight: float = Field(default=0.5, ge=0)
    time_half_life: float | None = Field(default=None, gt=0)
    global_weight: float = Field(default=0.05, ge=0)
    user_weight: Literal["none", "log", "linear"] = "log"
    normalization: Literal["cosine", "jaccard", "none"] = "cosine"
    alpha: float = Field(default=0.7, ge=0, le=1)
    pop_penalty: float = Field(default=0.0, ge=0)
    n_neighbours: int = Field(default=100, ge=1)
    history_len: int | None = Field(default=20, ge=1)
    recency_decay: float = Field(default=0.7, gt=0, le=1)
    history_floor: float = Field(default=0.0, ge=0)


@RECALL.register("itemcf")
class ItemCFRecall(MatrixScoredChannel[ItemCFParams]):
    """Items co-occurring (nearby, in order) with the user's recent items."""

    params_model = ItemCFParams

    @classmethod
    def requires(cls, params: ItemCFParams) -> tuple[needs.Need, ...]:
        """Real timestamps when ``time_half_life`` is set."""
        return (needs.real_time("time_half_life"),) if params.time_half_life else ()

    personalized: ClassVar[bool] = True

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Build the pruned item→item graph ``similarity_`` ``[n_items, n_items]``.

        The pair sums ``F`` are built, and the graph's rows assembled (``fw·F + bw·Fᵀ +
        gw·G``), normalised and pruned, in blocks of source items holding about
        ``BLOCK_PAIRS`` raw pairs each (one block below that), so peak memory is about one
        ``F`` plus one block's pieces per thread (blocks are built on up to ``threads``
        threads, ``funnelrec.threads``). Every pair sum is bit-identical to the one-block
        build's; among neighbours tied at the ``n_neighbours`` cut, which are kept can depend
        on the blocks (``row_topn`` pads rows to their group's width)."""
        offsets, items, ts = dataset.sequences
        n_items, p = dataset.n_items, self.params
        w_event = self._event_weights(offsets)
        counts = np.bincount(items, weights=w_event, minlength=n_items).astype(np.float64)
        events = np.bincount(items, minlength=n_items).astype(np.float64)
        bounds = self._blocks(events, None, BLOCK_PAIRS)
        forward = self._forward(offsets, items, ts, w_event, n_items, bounds)
        glob = _global(offsets, items, w_event, n_items) if p.global_weight > 0 else None

        def graph_rows(block: tuple[int, tuple[int, int]]) -> sp.csr_matrix:
            k, (lo, hi) = block
            raw = self._directed(forward, k, lo, hi)
            if glob is not None:
                raw = raw + p.global_weight * (glob[lo:hi] if len(forward) > 1 else glob)
            sim = _normalise(sp.csr_matrix(raw), counts, p, row_offset=lo)
            return row_topn(sim, p.n_neighbours, copy=False, dtype=np.float32, ties="any")

        # blocks are independent: one per thread (numpy/scipy release the GIL), same result
        parts = map_in_threads(graph_rows, enumerate(itertools.pairwise(bounds.tolist())))
        self.similarity_ = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
        self.n_items_ = n_items
        self.score_memo.clear()
        return self

    def fit_stream(
        self,
        source: ParquetInteractions,
        item_ids: IdMap,
        item_blocks: int | None = None,
        max_pairs: int = 50_000_000,
        spill_dir: str | Path | None = None,
    ) -> Self:
        """The same graph as ``fit`` on the same log, built from Parquet in chunks of whole
        users (``source.chunk_rows`` events at a time), in one pass over the data.

        Each chunk's pair weights are summed, cut into blocks of source items and spilled to
        ``spill_dir`` (a temporary folder; default: the system's; a log of one chunk keeps
        them in memory); then each block sums its
        parts, is normalised and pruned to ``n_neighbours``. Blocks are contiguous item ranges
        with about equal event counts: ``item_blocks`` of them, by default enough that one
        block's raw pairs stay under ``max_pairs``. Peak memory: one chunk's pairs, one
        block's pairs and the pruned graph (at most ``n_items × n_neighbours`` entries) — set
        by ``chunk_rows`` and ``max_pairs``, not by the log's size. Rows follow ``item_ids``.
        """
        n_items = len(item_ids)
        bounds = self._blocks(item_counts(source, item_ids), item_blocks, max_pairs)
        ranges = list(itertools.pairwise(bounds.tolist()))
        counts = np.zeros(n_items)
        parts = []
        with tempfile.TemporaryDirectory(prefix="itemcf-", dir=spill_dir) as tmp:
            store = _BlockStore(Path(tmp), in_memory=source.n_chunks == 1)
            n_chunks = 0
            for chunk in source.chunks(item_ids):
                raw, seen = self._raw(chunk.offsets, chunk.items, chunk.ts, n_items)
                counts += seen
                for b, (lo, hi) in enumerate(ranges):
                    store.put(b, n_chunks, raw if (lo, hi) == (0, n_items) else raw[lo:hi])
                n_chunks += 1
                del raw
            for b, (lo, hi) in enumerate(ranges):
                block = store.take(b, 0) if n_chunks else sp.csr_matrix((hi - lo, n_items))
                for c in range(1, n_chunks):
                    block = sp.csr_matrix(block + store.take(b, c))
                sim = _normalise(block, counts, self.params, row_offset=lo)
                parts.append(row_topn(sim, self.params.n_neighbours, copy=False, ties="any"))
        self.similarity_ = sp.csr_matrix(sp.vstack(parts, format="csr")).astype(np.float32)
        self.n_items_ = n_items
        self.score_memo.clear()
        return self

    def _blocks(self, counts: F64Array, blocks: int | None, max_pairs: int) -> IntArray:
        """``[B+1]`` boundaries of contiguous source-item blocks of about equal event counts."""
        if blocks is None:
            p = self.params
            directions = (p.forward_weight > 0) + (p.backward_weight > 0)
            blocks = max(1, math.ceil(counts.sum() * p.window * directions / max_pairs))
        if blocks < 1:
            raise ValueError(f"item_blocks must be >= 1, got {blocks}")
        cum = np.cumsum(counts)
        targets = cum[-1] * np.arange(1, blocks) / blocks if len(cum) else np.zeros(blocks - 1)
        inner = np.searchsorted(cum, targets, side="right")
        return np.unique(np.concatenate([[0], inner, [len(counts)]])).astype(np.int64)

    def _event_weights(self, offsets: IntArray) -> F64Array:
        """``[N]`` weight of every event: its user's ``user_weight``."""
        return user_weights(ragged.lengths(offsets), self.params.user_weight)[
            ragged.row_ids(offsets)
        ]

    def _raw(
        self, offsets: IntArray, items: IntArray, ts: F64Array, n_items: int
    ) -> tuple[sp.csr_matrix, F64Array]:
        """Raw pair weights ``[n_items, n_items]`` of some users' sequences and the
        user-weighted event count of every item ``[n_items]``."""
        w_event = self._event_weights(offsets)
        whole = np.array([0, n_items], dtype=np.int64)
        raw = self._directed(self._forward(offsets, items, ts, w_event, n_items, whole), 0)
        if self.params.global_weight > 0:
            raw = raw + self.params.global_weight * _global(offsets, items, w_event, n_items)
        counts = np.bincount(items, weights=w_event, minlength=n_items).astype(np.float64)
        return sp.csr_matrix(raw), counts

    def _forward(
        self,
        offsets: IntArray,
        items: IntArray,
        ts: F64Array,
        w_event: F64Array,
        n_items: int,
        bounds: IntArray,
    ) -> list[sp.csr_matrix]:
        """Forward, distance-weighted pair sums ``F[i, j]`` (``j`` after ``i``) as row blocks
        ``bounds`` ``[K+1]`` (``[hi - lo, n_items]`` each), built one window distance at a time
        (folded every ``MAX_PENDING`` pairs: memory)."""
        p = self.params
        total = RowBlockPairSum(bounds, n_items)
        if n_items < np.iinfo(np.int32).max:  # scipy's index type: no conversion later
            items = items.astype(np.int32)
        for d, starts in pairs_by_distance(offsets, p.window):
            # one distance's pairs in slices (memory); folded, as one add, after the last
            for at in range(0, len(starts), PAIR_SLICE):
                early = starts[at : at + PAIR_SLICE]
                early = early[items[early] != items[early + d]]  # no self-pairs (drop here)
                late = early + d
                w = w_event[early] * p.position_decay ** (d - 1)
                if p.time_half_life is not None:
                    w = w * np.exp2(-np.abs(ts[late] - ts[early]) / p.time_half_life)
                total.add(items[early], items[late], w, fold=False)
            total.fold_if_full()
        return total.result()

    def _directed(
        self, forward: list[sp.csr_matrix], k: int, lo: int = 0, hi: int | None = None
    ) -> sp.csr_matrix:
        """Rows ``lo:hi`` (block ``k`` of ``forward``) of ``forward_weight · F +
        backward_weight · Fᵀ``: backward pairs are the forward pairs reversed, and ``Fᵀ``'s
        rows are ``F``'s columns ``lo:hi``, gathered from every block."""
        p = self.params
        rows = forward[k]
        if p.backward_weight == 0:
            return rows * p.forward_weight if p.forward_weight != 1 else rows
        hi = rows.shape[1] if hi is None else hi
        columns = [block[:, lo:hi] for block in forward]
        by_column = columns[0] if len(columns) == 1 else sp.vstack(columns, format="csr")
        backward = by_column.T.tocsr()  # a new matrix: scaled in place (no copy of its data)
        backward.data *= p.backward_weight
        if p.forward_weight == 0:
            return backward
        # x * 1.0 == x: the default forward weight costs no copy of F
        ahead = rows * p.forward_weight if p.forward_weight != 1 else rows
        return sp.csr_matrix(ahead + backward)

    def score_matrix(self, query: Query) -> sp.csr_matrix:
        """``[B, n_items]`` scores: recency-weighted history ``@`` item similarity."""
        self.check_fitted()
        p = self.params
        recent = recent_matrix(
            query, self.n_items_, p.history_len, p.recency_decay, p.history_floor
        )
        return sp.csr_matrix(recent @ self.similarity_)

    def _retrieve(self, query: Query, k: int) -> Candidates:
        scores = self.retrieval_scores(query)
        return sparse_topk(scores, query, k, self.channel_name)


class _BlockStore:
    """Per-chunk pair blocks of ``fit_stream``: spilled to ``folder`` (uncompressed ``.npz``),
    or kept in memory when the log is one chunk (nothing to bound: skip the round trip)."""

    def __init__(self, folder: Path, in_memory: bool) -> None:
        self.folder = folder
        self.in_memory = in_memory
        self._held: dict[tuple[int, int], sp.csr_matrix] = {}

    def put(self, block: int, chunk: int, mat: sp.csr_matrix) -> None:
        if self.in_memory:
            self._held[(block, chunk)] = mat
        else:
            sp.save_npz(self.folder / f"{block}-{chunk}.npz", mat, compressed=False)

    def take(self, block: int, chunk: int) -> sp.csr_matrix:
        if self.in_memory:
            return self._held.pop((block, chunk))
        path = self.folder / f"{block}-{chunk}.npz"
        mat = sp.csr_matrix(sp.load_npz(path))
        path.unlink()
        return mat


def _global(offsets: IntArray, items: IntArray, w_event: F64Array, n_items: int) -> sp.csr_matrix:
    """User-weighted co-occurrence counts of all pairs in the same history, ``[n_items]^2``.

    ``X^T diag(w) X`` with ``X`` the binary ``[n_users, n_items]`` matrix; diagonal dropped.
    """
    users = ragged.row_ids(offsets)
    n_users = len(offsets) - 1
    x = sp.csr_matrix(
        (np.ones(len(items)), (users, items)), shape=(n_users, n_items), dtype=np.float64
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    w_user = np.zeros(n_users)
    w_user[users] = w_event
    co = sp.csr_matrix(x.T @ sp.diags(w_user) @ x)
    co.setdiag(0.0)
    co.eliminate_zeros()
    return co


def _normalise(
    raw: sp.csr_matrix, counts: F64Array, p: ItemCFParams, row_offset: int = 0
) -> sp.csr_matrix:
    """Apply ``normalization`` and ``pop_penalty`` to raw pair weights ``[R, n_items]`` of the
    source items ``row_offset .. row_offset + R`` (all items by default). A float64 CSR
    ``raw`` is changed in place (callers pass the matrix they just built)."""
    n = np.maximum(counts, 1e-12)
    mat = sp.csr_matrix(raw, dtype=np.float64)
    n_src = n[row_offset : row_offset + mat.shape[0]]
    lens = np.diff(mat.indptr)
    if p.normalization == "jaccard":
        union = np.repeat(n_src, lens) + n[mat.indices] - mat.data
        mat.data = mat.data / np.maximum(union, mat.data)
    source, target = np.ones_like(n_src), n ** (-p.pop_penalty)
    if p.normalization == "cosine":
        source, target = n_src ** (-p.alpha), target * n ** (p.alpha - 1.0)
    # diag(source) @ mat @ diag(target), entry by entry (no sparse matrix products)
    if p.normalization == "cosine" or p.pop_penalty != 0:
        mat.data *= np.repeat(source, lens)
        mat.data *= target[mat.indices]
    return mat
