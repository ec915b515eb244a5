"""``Loop``: what closes the loop inside one server process — the impression log, request-
linked events, online counters, the rollout arms and their outcomes, and the scheduled refit.

The routes call four hooks: ``pick`` (which funnel serves this user), ``submit`` (run it, or
both when interleaving), ``logged`` (request id + impressions) and ``on_events``. Its
collectors join the app's Prometheus registry (``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.impressions import ImpressionLog, new_request_id
from funnelrec.serve.microbatch import RowResult
from funnelrec.serve.model import ServedFunnel, load_served
from funnelrec.serve.online import OnlineCounters, attach
from funnelrec.serve.query import Request
from funnelrec.serve.rollout import CANDIDATE, CONTROL, Outcomes, arm_of, team_draft
from funnelrec.serve.store.base import Event, Feedback, Impression, StoreError

if TYPE_CHECKING:
    from funnelrec.serve.state import ServeState

log = logging.getLogger(__name__)
INTERLEAVE = "interleave"
REFIT_KEYS = ("refit:accepted", "refit:rejected", "refit:failed")


class Loop:
    """The loop's per-process state (created by ``ServeState``)."""

    def __init__(self, state: ServeState) -> None:
        self.state = state
        s = state.settings
        self.impressions = ImpressionLog(state.store, s.impression_flush_ms / 1000)
        self.outcomes = Outcomes()
        self.counters: OnlineCounters | None = None
        self.candidate: ServedFunnel | None = None
        if s.candidate is not None:
            self.candidate = load_served(s.candidate, state.store.items(), generation=1)
        self._tasks: list[asyncio.Task[None]] = []
        self.adopt(state.current)
        state.metrics.registry.register(_LoopCollector(self))

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self.state.settings.log_impressions:
            self.impressions.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._apply_counters(), name="online-counters"))
        if self.state.settings.refit_every_s > 0:
            from funnelrec.serve.refit_schedule import run_schedule

            self._tasks.append(loop.create_task(run_schedule(self.state), name="refit"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(StoreError):
            await self.impressions.stop()

    def adopt(self, served: ServedFunnel) -> None:
        """Fresh online counters for a newly loaded funnel (a refit replaces the old ones)."""
        s = self.state.settings
        if not s.online_counters:
            return
        self.counters = OnlineCounters(served, half_life_s=s.online_half_life_s)
        attach(self.counters)

    async def _apply_counters(self) -> None:
        interval = self.state.settings.online_apply_s
        while True:
            await asyncio.sleep(interval)
            counters = self.counters
            if counters is not None and counters.pending:
                try:
                    await run_in_threadpool(counters.apply)
                except Exception:  # never stop updating because of one bad batch
                    log.exception("online counters: update failed")

    # -- request hooks ------------------------------------------------------------------
    def pick(self, user_id: str) -> tuple[ServedFunnel, str]:
        """The funnel that serves ``user_id`` and the arm (stable per user)."""
        s = self.state.settings
        if self.candidate is None:
            return self.state.current, CONTROL
        arm = arm_of(user_id, s.share, s.rollout_salt)
        if arm == CANDIDATE and s.interleave:
            return self.state.current, INTERLEAVE
        return (self.candidate if arm == CANDIDATE else self.state.current), arm

    async def submit(
        self, served: ServedFunnel, arm: str, request: Request, k: int, explain: bool
    ) -> tuple[RowResult, list[str] | None]:
        """The slate (and, interleaved, the team of each item)."""
        batcher = self.state.batcher
        if arm != INTERLEAVE or self.candidate is None:
            return await batcher.submit(served, request, k, explain), None
        other = self.candidate
        b_request = Request(other.user_key(request.user_key), request.now, request.exclude)
        a, b = await asyncio.gather(
            batcher.submit(served, request, k, explain),
            batcher.submit(other, b_request, k, explain),
        )
        return _interleaved(served, other, a, b, k, hash(request.user_key) ^ int(request.now))

    def logged(self, body: dict[str, Any], arm: str, at: float, teams: list[str] | None) -> None:
        """Give the response its request id and log its impressions."""
        rid = new_request_id()
        body["request_id"], body["arm"] = rid, arm
        arms = teams or [arm] * len(body["items"])
        rows = [
            Impression(
                rid,
                str(body["user_id"]),
                str(it["item_id"]),
                pos,
                it["score"],
                int(body["generation"]),
                team,
                at,
            )
            for pos, (it, team) in enumerate(zip(body["items"], arms, strict=True))
        ]
        self.outcomes.shown(rows)
        if self.state.settings.log_impressions:
            self.impressions.record(rows)

    async def on_events(self, events: list[Event], request_ids: list[str | None]) -> None:
        """Stored events: queue them for the counters, store and credit request links."""
        if self.counters is not None:
            self.counters.push(events)
        links = [Feedback(r, e) for e, r in zip(events, request_ids, strict=True) if r]
        if links:
            await run_in_threadpool(self.state.store.append_feedback, links)
            self.outcomes.clicked(links)


def _interleaved(
    a_served: ServedFunnel, b_served: ServedFunnel, a: RowResult, b: RowResult, k: int, seed: int
) -> tuple[RowResult, list[str]]:
    """Team-draft of two results (items in ``a_served``'s dense ids)."""
    a_ids = [str(i) for i in a_served.item_ids(a.items)]
    b_ids = [str(i) for i in b_served.item_ids(b.items)]
    known = a_served.item_indices(b_ids) >= 0  # items the control funnel cannot name are skipped
    b_ids = [i for i, ok in zip(b_ids, known, strict=True) if ok]
    drafted = team_draft(a_ids, b_ids, k, seed & 0xFFFFFFFF)
    score = {**dict(zip(b_ids, b.scores.tolist(), strict=False))}
    score.update(zip(a_ids, a.scores.tolist(), strict=True))
    items = a_served.item_indices([i for i, _ in drafted])
    result = RowResult(
        known_user=a.known_user,
        items=items.astype(np.int64),
        scores=np.asarray([score[i] for i, _ in drafted], dtype=np.float32),
        channels=[[team] for _, team in drafted],
        timings=a.timings,
        batch_size=a.batch_size,
        trace=a.trace,
    )
    return result, [team for _, team in drafted]


class _LoopCollector(Collector):
    """Per-arm outcomes with Wilson intervals, impression log, online counters, refits."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily("funnelrec_arm", "Per-arm counts", labels=["arm", "kind"])
        rate = GaugeMetricFamily(
            "funnelrec_arm_rate",
            "Per-arm CTR / conversion (Wilson 95%)",
            labels=["arm", "rate", "bound"],
        )
        for name, c, ctr, conv in self.loop.outcomes.table():
            for kind in ("impressions", "requests", "clicks", "converted"):
                counts.add_metric([name, kind], getattr(c, kind))
            for label, interval in (("ctr", ctr), ("conversion", conv)):
                for bound, value in zip(("mean", "low", "high"), interval, strict=True):
                    rate.add_metric([name, label, bound], value)
        yield counts
        yield rate
        wins = CounterMetricFamily(
            "funnelrec_interleave_wins", "Interleaved requests won per team", labels=["team"]
        )
        for team, n in self.loop.outcomes.wins().items():
            wins.add_metric([team], n)
        yield wins
        imp = self.loop.impressions.stats()
        log_gauge = GaugeMetricFamily(
            "funnelrec_impression_log_rows", "Impression log rows", labels=["state"]
        )
        for key, value in imp.items():
            log_gauge.add_metric([key], value)
        yield log_gauge
        counters = self.loop.counters
        online = CounterMetricFamily("funnelrec_online_events", "Events applied to online counters")
        online.add_metric([], counters.applied if counters else 0)
        yield online
        yield from _refit_metrics(self.loop)


def _refit_metrics(loop: Loop) -> Iterator[Metric]:
    """Refit decisions published in the store by any refit worker (or this process)."""
    family = CounterMetricFamily(
        "funnelrec_refit_decisions", "Refit decisions (holdout check)", labels=["decision"]
    )
    try:
        for key in REFIT_KEYS:
            family.add_metric([key.split(":")[1]], loop.state.store.published(key)[0])
    except StoreError:
        return
    yield family
