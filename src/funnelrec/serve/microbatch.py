"""Micro-batching of ``/recommend``: requests that arrive while the funnel is busy run through
it together as one batch (the funnel is batch-first; a batch of 50 costs far less than 50
batches of one).

A request enqueues itself and awaits a future; the batcher task takes up to ``max_batch``
queued requests, groups them by funnel generation and
``k`` and runs each group on the **funnel thread** — one thread that runs every funnel
operation (batches, item upserts, ``/similar``), so stages never run concurrently and the
event loop keeps serving (parsing the next requests, ``/events``, ``/health``) during a batch.
The group's store reads happen there too, as one batched read: the event loop never blocks
on the store (nor waits for the GIL after one).

Under load (the previous batch held more than one request) the batcher waits ``wait_s`` after
a request arrives before taking the queue, so that the requests of clients answered a moment
ago join it: without the wait, 50 closed-loop clients settle into two alternating batches of
25 once the HTTP side is fast, and the funnel's fixed cost per batch is paid twice. An idle
server (the previous batch was a single request) waits one loop turn only, so a lone request
is never delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from funnelrec import provenance
from funnelrec.ragged import IntArray
from funnelrec.serve.metrics import Metrics
from funnelrec.serve.model import ServedFunnel, Timings, run_timed
from funnelrec.serve.query import Request, Row, batch_query, make_row
from funnelrec.serve.store.base import StoreError, UserState
from funnelrec.trace import FunnelTrace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowResult:
    """A request's slate (dense ids), scores, channels per item, and optional trace."""

    known_user: bool
    items: IntArray
    scores: npt.NDArray[np.float32]
    channels: list[list[str]]
    timings: Timings
    batch_size: int
    trace: dict[str, Any] | None = None


ReadStates = Callable[[list[str]], list[UserState]]


@dataclass
class _Job:
    served: ServedFunnel
    request: Request
    k: int
    explain: bool
    future: asyncio.Future[RowResult]


class Batcher:
    """Collects concurrent requests into funnel batches."""

    def __init__(
        self,
        metrics: Metrics,
        funnel_thread: Executor,
        read_states: ReadStates,
        max_batch: int = 64,
        wait_s: float = 0.0,
    ) -> None:
        self._metrics = metrics
        self._thread = funnel_thread
        self._read_states = read_states
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._busy = False  # the previous batch held more than one request
        self._queue: list[_Job] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="funnel-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(
        self, served: ServedFunnel, request: Request, k: int, explain: bool
    ) -> RowResult:
        """Queue one request and wait for its slate (``StoreError`` when the store fails)."""
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running (app started without its lifespan?)")
        future: asyncio.Future[RowResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(served, request, k, explain, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.wait())  # at least one loop turn: ready requests join
            jobs, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self._busy = len(jobs) > 1
            if not self._queue:
                self._wake.clear()
            groups: dict[tuple[int, int], list[_Job]] = defaultdict(list)
            for job in jobs:
                if not job.future.done():  # a cancelled request needs no slate
                    groups[(id(job.served), job.k)].append(job)
            for group in groups.values():
                await self._run_group(group)

    def wait(self) -> float:
        """Seconds to wait before taking the queue: ``wait_s`` under load (the previous batch
        held more than one request), else 0 (one loop turn)."""
        return self._wait_s if self._busy else 0.0

    async def _run_group(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        requests, explain = [j.request for j in jobs], [j.explain for j in jobs]
        try:
            results = await loop.run_in_executor(
                self._thread, self._run_batch, jobs[0].served, requests, jobs[0].k, explain
            )
        except Exception as exc:  # every waiting request gets the error (503/500)
            if not isinstance(exc, StoreError):
                log.exception("funnel batch of %d failed", len(jobs))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self._metrics.batch_size.observe(len(jobs))
        self._metrics.observe_stages(results[0].timings)
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    def _run_batch(
        self, served: ServedFunnel, requests: list[Request], k: int, explain: list[bool]
    ) -> list[RowResult]:
        """Read the users' store state (one batched read), then run the funnel."""
        start = time.perf_counter()
        states = self._read_states([str(r.user_key) for r in requests])
        rows = [
            make_row(served, r.user_key, state, r.now, r.exclude)
            for r, state in zip(requests, states, strict=True)
        ]
        store_s = time.perf_counter() - start
        results = run_rows(served, rows, k, explain)
        results[0].timings["store"] = store_s
        return results


def run_rows(served: ServedFunnel, rows: list[Row], k: int, explain: list[bool]) -> list[RowResult]:
    """Run one batch through the funnel and split the slate per request."""
    # the channels' evidence only when a stage reads it or a request shows it (explain)
    trace, timings = run_timed(served, batch_query(rows, k), evidence=any(explain))
    slate = trace.slate
    assert slate is not None
    channels = _channels(trace)
    offsets = slate.offsets.tolist()
    return [
        RowResult(
            known_user=rows[b].user_idx >= 0,
            items=slate.row(b)[0],
            scores=slate.row(b)[1],
            channels=channels[offsets[b] : offsets[b + 1]],
            timings=timings,
            batch_size=len(rows),
            trace=trace.explain(b, served.dataset.item_ids) if explain[b] else None,
        )
        for b in range(len(rows))
    ]


def _channels(trace: FunnelTrace) -> list[list[str]]:
    """Names of the recall channels that found each slate item (flat, all rows): one name
    list per distinct set of channels, shared by the items that have it."""
    assert trace.slate is not None
    return provenance.channel_sets(trace.slate)
