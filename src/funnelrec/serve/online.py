"""Online counters: popularity and item-CF co-occurrences updated from ``/events`` between
refits, so a new trend reaches the ``popular`` and ``itemcf`` channels within seconds.

``/events`` only queues the stored events (O(1) per request). A background step applies the
queue in batches of at most ``max_batch`` events: each event adds its decayed weight to its
item's count and to its pairs with the user's last ``history_len`` events seen here (both
directions), and the pair table is pruned to ``max_pairs`` entries. The step then builds
an immutable ``Snapshot`` (per popular channel its ranking with the online counts added;
the co-occurrence matrix) and swaps one reference; requests read whichever snapshot is
current. Counters belong to one loaded funnel: a reload (a refit) starts from empty ones,
as the refit's training data holds those events.

Counts decay with ``half_life_s``: weights are kept in units of the first event's time and
scaled at snapshot time, so old events never need rewriting.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.recall.base import global_topk
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.store.base import Event
from funnelrec.types import Candidates, Query

F64 = npt.NDArray[np.float64]
POPULAR, ITEMCF = "popular", "itemcf"


@dataclass(frozen=True)
class Snapshot:
    """What requests read: per popular channel id its ranking, and the pair matrix."""

    popular: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = field(
        default_factory=dict
    )
    pairs: sp.csr_matrix | None = None


@dataclass
class OnlineCounters:
    """Decayed counts of one served funnel (see the module docstring)."""

    served: ServedFunnel
    half_life_s: float = 86_400.0
    history_len: int = 5
    max_pairs: int = 200_000
    max_users: int = 100_000
    max_batch: int = 10_000
    snapshot: Snapshot = field(default_factory=Snapshot)
    applied: int = 0
    _queue: deque[Event] = field(default_factory=deque)
    _pop: dict[int, float] = field(default_factory=dict)
    _pairs: dict[tuple[int, int], float] = field(default_factory=dict)
    _recent: OrderedDict[str, deque[int]] = field(default_factory=OrderedDict)
    _t0: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, events: Sequence[Event]) -> None:
        """Queue stored events (called by ``/events``)."""
        self._queue.extend(events)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def apply(self) -> int:
        """Apply up to ``max_batch`` queued events and publish a new snapshot; returns how
        many were applied."""
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            if not batch:
                return 0
            self._count(batch)
            self.snapshot = self._build(time.time())
            self.applied += len(batch)
            return len(batch)

    def _count(self, batch: list[Event]) -> None:
        items = self.served.item_indices([e.item_id for e in batch]).tolist()
        t0 = self._t0 = batch[0].timestamp if self._t0 is None else self._t0
        for e, item in zip(batch, items, strict=True):
            if item < 0:
                continue
            w = float(np.exp2(np.clip((e.timestamp - t0) / self.half_life_s, -60, 60)))
            self._pop[item] = self._pop.get(item, 0.0) + w
            recent = self._recent.pop(e.user_id, None) or deque(maxlen=self.history_len)
            for other in recent:
                if other != item:
                    self._pairs[(other, item)] = self._pairs.get((other, item), 0.0) + w
                    self._pairs[(item, other)] = self._pairs.get((item, other), 0.0) + w
            recent.append(item)
            self._recent[e.user_id] = recent  # most recent user last
        while len(self._recent) > self.max_users:
            self._recent.popitem(last=False)
        if len(self._pairs) > self.max_pairs:  # keep the strongest half
            keep = sorted(self._pairs.items(), key=lambda kv: -kv[1])[: self.max_pairs // 2]
            self._pairs = dict(keep)

    def _build(self, now: float) -> Snapshot:
        assert self._t0 is not None
        scale = float(np.exp2(np.clip(-(now - self._t0) / self.half_life_s, -60, 60)))
        n = self.served.dataset.n_items
        online = np.zeros(n)
        keys = np.fromiter(self._pop.keys(), dtype=np.int64, count=len(self._pop))
        online[keys] = np.fromiter(self._pop.values(), dtype=np.float64, count=len(keys)) * scale
        popular = {}
        for cid, channel in self.served.funnel.channels.items():
            if channel.registered_name == POPULAR and hasattr(channel, "ranked_items_"):
                total = online.copy()
                np.add.at(total, channel.ranked_items_, getattr(channel, "ranked_scores_"))  # noqa: B009
                order = np.argsort(-total, kind="stable")
                order = order[total[order] > 0]
                popular[cid] = (order.astype(np.int64), total[order].astype(np.float32))
        pairs = None
        if self._pairs:
            ij = np.asarray(list(self._pairs.keys()), dtype=np.int64)
            w = np.fromiter(self._pairs.values(), dtype=np.float64, count=len(ij)) * scale
            pairs = sp.csr_matrix((w, (ij[:, 0], ij[:, 1])), shape=(n, n))
        return Snapshot(popular, pairs)


def attach(counters: OnlineCounters) -> None:
    """Route the served funnel's ``popular`` and ``itemcf`` channels through ``counters``'
    current snapshot (each call reads the snapshot once)."""
    for cid, channel in counters.served.funnel.channels.items():
        name = channel.registered_name
        if name not in (POPULAR, ITEMCF):
            continue
        inner: Callable[[Query, int], Candidates] = channel._retrieve
        blend = _popular(cid, inner) if name == POPULAR else _itemcf(inner)

        def retrieve(query: Query, k: int, blend: Any = blend) -> Candidates:
            return blend(counters.snapshot, query, k)  # type: ignore[no-any-return]

        channel._retrieve = retrieve  # type: ignore[method-assign]


def _popular(cid: str, inner: Callable[[Query, int], Candidates]) -> Any:
    def blend(snap: Snapshot, query: Query, k: int) -> Candidates:
        if cid not in snap.popular:
            return inner(query, k)
        items, scores = snap.popular[cid]
        return global_topk(items, scores, query, k, POPULAR)

    return blend


def _itemcf(inner: Callable[[Query, int], Candidates], history_len: int = 5) -> Any:
    def blend(snap: Snapshot, query: Query, k: int) -> Candidates:
        base = inner(query, k)
        if snap.pairs is None:
            return base
        return union_topk(base, online_scores(snap.pairs, query, history_len), query, k)

    return blend


def online_scores(pairs: sp.csr_matrix, query: Query, history_len: int) -> sp.csr_matrix:
    """``[B, n_items]``: pair counts from each query's last ``history_len`` items, squashed to
    ``c / (c + 1)`` (in ``[0, 1)``)."""
    offsets, items, _ = query.recent_history(history_len)
    n = pairs.shape[0]
    inside = items < n
    rows = ragged.row_ids(offsets)[inside]
    recent = sp.csr_matrix((np.ones(len(rows)), (rows, items[inside])), shape=(query.batch_size, n))
    scores = (recent @ pairs).tocsr()
    scores.data = scores.data / (scores.data + 1.0)
    return scores


def union_topk(base: Candidates, online: sp.csr_matrix, query: Query, k: int) -> Candidates:
    """Top ``k`` per row of the channel's candidates and the online ones; online scores are
    scaled by the row's best channel score (an item found by both keeps the larger)."""
    b_rows = base.row_ids()
    best = np.zeros(query.batch_size)
    np.maximum.at(best, b_rows, np.abs(base.scores.astype(np.float64)))
    best[best == 0] = 1.0  # rows without channel candidates: online scores as they are
    coo = online.tocoo()
    rows = np.concatenate([b_rows, coo.row.astype(np.int64)])
    items = np.concatenate([base.item_idx, coo.col.astype(np.int64)])
    scores = np.concatenate([base.scores.astype(np.float64), coo.data * best[coo.row]])
    order = np.lexsort((-scores, items, rows))  # per (row, item): the best score first
    rows, items, scores = rows[order], items[order], scores[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    rows, items, scores = rows[first], items[first], scores[first]
    order = np.lexsort((-scores, rows))
    offsets = ragged.offsets_from_row_ids(rows[order], query.batch_size)
    merged = Candidates.from_flat(offsets, items[order], scores[order], ITEMCF)
    return merged.excluding(query).truncate(k)
