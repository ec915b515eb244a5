"""``ServedFunnel``: one loaded funnel artifact plus what serving needs around it — id
resolution, per-stage timers and the store's item upserts replayed onto it.

A ``ServedFunnel`` is built completely (in a worker thread) before it is published; requests
keep the one they started with, so a reload never disturbs in-flight requests.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import ExternalId
from funnelrec.pipeline import Funnel
from funnelrec.ragged import IntArray
from funnelrec.serve.catalogue import canonical_id, has_int_ids, item_frame
from funnelrec.serve.store.base import ItemRecord
from funnelrec.trace import FunnelTrace
from funnelrec.types import Query

Timings = dict[str, float]


@dataclass
class ServedFunnel:
    """A funnel being served.

    Attributes:
        funnel: the loaded funnel (its dataset grows with item upserts).
        artifacts: the directory it came from.
        generation: increments with every reload.
        loaded_at: wall-clock time of the load.
        timings: seconds per stage of the latest batch (filled by the stage timers).
    """

    funnel: Funnel
    artifacts: Path
    generation: int
    loaded_at: float = field(default_factory=time.time)
    timings: Timings = field(default_factory=dict)
    int_users: bool = False
    int_items: bool = False

    def __post_init__(self) -> None:
        self.int_users = has_int_ids(self.dataset.user_ids)
        self.int_items = has_int_ids(self.dataset.item_ids)

    @property
    def dataset(self) -> Dataset:
        return self.funnel.dataset

    def user_key(self, raw: ExternalId) -> ExternalId:
        return canonical_id(raw, self.int_users)

    def item_key(self, raw: ExternalId) -> ExternalId:
        return canonical_id(raw, self.int_items)

    def user_index(self, key: ExternalId) -> int:
        return int(self.dataset.user_ids.lookup([key])[0])

    def item_indices(self, keys: Sequence[ExternalId]) -> IntArray:
        """Dense ids of raw/stored item ids (``-1`` for unknown ones)."""
        return self.dataset.item_ids.lookup([self.item_key(k) for k in keys])

    def item_ids(self, idx: IntArray) -> list[ExternalId]:
        return self.dataset.item_ids.external(idx)

    def upsert(self, records: Sequence[ItemRecord]) -> list[ExternalId]:
        """Apply flat item records (``item_id`` + attributes) to the funnel."""
        frame, keys = item_frame(records, self.dataset.item_ids, self.dataset.items.schema)
        self.funnel.upsert_items(frame)
        return keys


def load_served(artifacts: Path, items: Sequence[ItemRecord], generation: int) -> ServedFunnel:
    """Load an artifact, time its stages, replay the store's item upserts onto it (the
    thread pools are the server's: ``Settings.threads``, applied by ``ServeState.open``)."""
    served = ServedFunnel(Funnel.load(artifacts), Path(artifacts), generation)
    instrument(served.funnel, served.timings)
    if items:
        served.upsert(items)
    served.dataset.sequences  # noqa: B018 - build the cached view now, not on a request
    return served


def instrument(
    funnel: Funnel, timings: Timings, clock: Callable[[], float] = time.perf_counter
) -> None:
    """Make every stage entry point add its duration to ``timings`` (``Funnel.run`` stays the
    one implementation of the funnel; only the stage objects are wrapped). ``clock``:
    ``time.perf_counter`` (latency) or ``time.thread_time`` (CPU of the calling thread)."""
    for cid, channel in funnel.channels.items():
        _time_method(channel, "retrieve", f"recall:{cid}", timings, clock)
    _time_method(funnel.preranker, "score", "prerank", timings, clock)
    _time_method(funnel.ranker, "score", "rank", timings, clock)
    for reranker in funnel.rerankers:
        _time_method(reranker, "rerank", f"rerank:{reranker.registered_name}", timings, clock)


def _time_method(
    stage: object, name: str, label: str, timings: Timings, clock: Callable[[], float]
) -> None:
    inner: Callable[..., Any] = getattr(stage, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            timings[label] = timings.get(label, 0.0) + clock() - start

    setattr(stage, name, timed)


def run_timed(
    served: ServedFunnel, query: Query, evidence: bool = True
) -> tuple[FunnelTrace, Timings]:
    """``Funnel.run`` with per-stage seconds; ``merge`` = the rest (merge, cuts, slate)."""
    served.timings.clear()
    start = time.perf_counter()
    trace = served.funnel.run(query, evidence)
    total = time.perf_counter() - start
    timings = dict(served.timings)
    timings["merge"] = max(total - sum(timings.values()), 0.0)
    timings["funnel"] = total
    return trace, timings
