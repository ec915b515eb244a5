"""The micro-batcher's wait: under load it waits ``wait_s`` for more requests to join a
batch; an idle server (the previous batch was one request) never delays a lone request."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from funnelrec.serve.metrics import Metrics
from funnelrec.serve.microbatch import Batcher, RowResult
from funnelrec.serve.query import Request

WAIT_S = 1.0


def fake_result(n: int) -> list[RowResult]:
    empty = np.zeros(0, dtype=np.int64)
    scores = np.zeros(0, dtype=np.float32)
    return [RowResult(True, empty, scores, [], {}, n) for _ in range(n)]


async def run_scenario() -> tuple[list[int], float, float]:
    """A lone request on an idle server, then a burst of three, then two requests 50 ms
    apart; returns the batch sizes and the lone and late requests' latencies."""
    sizes: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(Metrics(), pool, lambda users: [], max_batch=64, wait_s=WAIT_S)

        def run_batch(served: Any, requests: list[Request], k: int, explain: list[bool]) -> Any:
            sizes.append(len(requests))
            return fake_result(len(requests))

        batcher._run_batch = run_batch  # type: ignore[method-assign]
        batcher.start()
        served: Any = object()

        def submit(user: str) -> Any:
            return batcher.submit(served, Request(user, 0.0), 10, False)

        start = time.perf_counter()
        await submit("lone")
        lone_s = time.perf_counter() - start
        await asyncio.gather(*(submit(f"burst{i}") for i in range(3)))  # one loop turn: 1 batch
        first = asyncio.ensure_future(submit("a"))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await asyncio.gather(first, submit("b"))  # under load: b joins a's batch
        late_s = time.perf_counter() - start
        await batcher.stop()
    return sizes, lone_s, late_s


def test_idle_server_never_waits_and_a_busy_one_gathers() -> None:
    sizes, lone_s, late_s = asyncio.run(run_scenario())
    assert sizes == [1, 3, 2]
    assert lone_s < WAIT_S / 2  # a lone request on an idle server is not delayed
    assert late_s < WAIT_S  # b waited only for the rest of a's wait
