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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.data.streaming import ParquetInteractions, item_counts
from funnelrec.ragged import IntArray
from funnelrec.recall._cooccurrence import (
    F64Array,
    PairSum,
    events_after,
    recent_matrix,
    row_topn,
    sequence_pairs,
    sparse_topk,
    user_weights,
)
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

Sequences = tuple[IntArray, IntArray, F64Array]


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
class ItemCFRecall(RecallChannel[ItemCFParams]):
    """Items co-occurring (nearby, in order) with the user's recent items."""

    params_model = ItemCFParams
    personalized: ClassVar[bool] = True

    def fit(self, dataset: Dataset) -> Self:
        """Build the pruned item→item graph ``similarity_`` ``[n_items, n_items]``."""
        bounds = np.array([0, dataset.n_items], dtype=np.int64)
        return self._fit_chunks(lambda: iter([dataset.sequences]), dataset.n_items, bounds)

    def fit_stream(
        self,
        source: ParquetInteractions,
        item_ids: IdMap,
        item_blocks: int | None = None,
        max_pairs: int = 50_000_000,
    ) -> Self:
        """The same graph as ``fit`` on the same log, built from Parquet in chunks of whole
        users (``source.chunk_rows`` events at a time).

        The source items are cut into ``item_blocks`` contiguous blocks of about equal event
        counts (default: enough blocks that one block's raw pair weights stay under
        ``max_pairs`` entries, from the log's size and ``window``), one pass over the data
        each. Peak memory: one chunk, one block's raw pairs and the pruned graph (at most
        ``n_items × n_neighbours`` entries) — the memory setting is ``chunk_rows`` and
        ``max_pairs``, not the log's size. ``similarity_`` rows follow ``item_ids``.
        """
        counts = item_counts(source, item_ids)
        if item_blocks is None:
            p = self.params
            directions = (p.forward_weight > 0) + (p.backward_weight > 0)
            generated = counts.sum() * p.window * directions
            item_blocks = max(1, math.ceil(generated / max_pairs))
        bounds = _balanced_bounds(counts, item_blocks)

        def chunks() -> Iterator[Sequences]:
            return ((c.offsets, c.items, c.ts) for c in source.chunks(item_ids))

        return self._fit_chunks(chunks, len(item_ids), bounds)

    def _fit_chunks(
        self, chunks: Callable[[], Iterator[Sequences]], n_items: int, bounds: IntArray
    ) -> Self:
        """Sum every chunk's pairs, block of source rows ``bounds[b]:bounds[b+1]`` by block;
        normalise; prune."""
        counts: F64Array | None = None
        parts = []
        for lo, hi in itertools.pairwise(bounds.tolist()):
            rows = None if len(bounds) == 2 else (lo, hi)
            seq, glob = PairSum((n_items, n_items)), PairSum((n_items, n_items))
            seen = np.zeros(n_items)
            for offsets, items, ts in chunks():
                w_event = user_weights(ragged.lengths(offsets), self.params.user_weight)[
                    ragged.row_ids(offsets)
                ]
                self._sequential(seq, offsets, items, ts, w_event, rows)
                if self.params.global_weight > 0:
                    glob.add_matrix(_global(offsets, items, w_event, n_items, rows))
                seen += np.bincount(items, weights=w_event, minlength=n_items)
            counts = seen if counts is None else counts  # every pass counts the same
            raw = seq.result()
            if self.params.global_weight > 0:
                raw = raw + self.params.global_weight * glob.result()
            sim = _normalise(sp.csr_matrix(raw), counts, self.params)
            parts.append(row_topn(sim, self.params.n_neighbours)[lo:hi])
        self.similarity_ = sp.csr_matrix(sp.vstack(parts, format="csr")).astype(np.float32)
        self.n_items_ = n_items
        return self

    def _sequential(
        self,
        total: PairSum,
        offsets: IntArray,
        items: IntArray,
        ts: F64Array,
        w_event: F64Array,
        rows: tuple[int, int] | None,
    ) -> None:
        """Add directed, distance-weighted pair weights to ``total`` (source items in
        ``rows`` only, when given), one vectorised pass per position offset ``d``."""
        p = self.params
        after = events_after(offsets)
        for d in range(1, p.window + 1):
            early, late, dt = sequence_pairs(after, ts, d)
            if len(early) == 0:
                break
            w = w_event[early] * p.position_decay ** (d - 1)
            if p.time_half_life is not None:
                w = w * np.exp2(-dt / p.time_half_life)
            if p.forward_weight > 0:
                total.add(*_in_rows(items[early], items[late], w * p.forward_weight, rows))
            if p.backward_weight > 0:
                total.add(*_in_rows(items[late], items[early], w * p.backward_weight, rows))

    def _retrieve(self, query: Query, k: int) -> Candidates:
        p = self.params
        recent = recent_matrix(
            query, self.n_items_, p.history_len, p.recency_decay, p.history_floor
        )
        scores = sp.csr_matrix(recent @ self.similarity_)
        return sparse_topk(scores, query, k, self.channel_name)


def _balanced_bounds(counts: F64Array, blocks: int) -> IntArray:
    """``[blocks+1]`` item boundaries of contiguous blocks with about equal event counts."""
    if blocks < 1:
        raise ValueError(f"item_blocks must be >= 1, got {blocks}")
    cum = np.cumsum(counts)
    targets = cum[-1] * np.arange(1, blocks) / blocks if len(cum) else np.zeros(blocks - 1)
    inner = np.searchsorted(cum, targets, side="right")
    return np.unique(np.concatenate([[0], inner, [len(counts)]])).astype(np.int64)


def _in_rows(
    src: IntArray, dst: IntArray, w: F64Array, rows: tuple[int, int] | None
) -> tuple[IntArray, IntArray, F64Array]:
    """The pairs whose source item lies in ``rows`` (all when ``None``)."""
    if rows is None:
        return src, dst, w
    keep = (src >= rows[0]) & (src < rows[1])
    return src[keep], dst[keep], w[keep]


def _global(
    offsets: IntArray,
    items: IntArray,
    w_event: F64Array,
    n_items: int,
    rows: tuple[int, int] | None = None,
) -> sp.csr_matrix:
    """User-weighted co-occurrence counts of all pairs in the same history, ``[n_items]^2``
    (only source rows in ``rows`` filled, when given).

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
    left = x.T if rows is None else _row_block(sp.csr_matrix(x.T), rows)
    co = sp.csr_matrix(left @ sp.diags(w_user) @ x)
    co.setdiag(0.0)
    co.eliminate_zeros()
    return co


def _row_block(mat: sp.csr_matrix, rows: tuple[int, int]) -> sp.csr_matrix:
    """``mat`` with every row outside ``rows`` emptied (shape kept)."""
    indptr = mat.indptr.astype(np.int64)
    lo, hi = indptr[rows[0]], indptr[rows[1]]
    new_ptr = np.clip(indptr, lo, hi) - lo
    return sp.csr_matrix((mat.data[lo:hi], mat.indices[lo:hi], new_ptr), shape=mat.shape)


def _normalise(raw: sp.csr_matrix, counts: F64Array, p: ItemCFParams) -> sp.csr_matrix:
    """Apply ``normalization`` and ``pop_penalty`` to raw pair weights ``[n_items]^2``."""
    n = np.maximum(counts, 1e-12)
    mat = sp.csr_matrix(raw, dtype=np.float64, copy=True)
    if p.normalization == "jaccard":
        rows = ragged.row_ids(mat.indptr.astype(np.int64))
        union = n[rows] + n[mat.indices] - mat.data
        mat.data = mat.data / np.maximum(union, mat.data)
    source, target = np.ones_like(n), n ** (-p.pop_penalty)
    if p.normalization == "cosine":
        source, target = n ** (-p.alpha), target * n ** (p.alpha - 1.0)
    return sp.csr_matrix(sp.diags(source) @ mat @ sp.diags(target))
