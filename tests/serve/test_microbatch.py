"""The micro-batcher's wait: under load (the previous batch held more than one request) it
waits ``wait_s`` for more requests to join; an idle server never delays a lone request."""

from __future__ import annotations

import asyncio
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


async def run_scenario() -> tuple[list[int], list[float]]:
    """A lone request on an idle server, a burst of three, then two requests 50 ms apart;
    returns the batch sizes and the wait chosen before each batch."""
    sizes: list[int] = []
    waits: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(Metrics(), pool, lambda users: [], max_batch=64, wait_s=WAIT_S)

        def run_batch(served: Any, requests: list[Request], k: int, explain: list[bool]) -> Any:
            sizes.append(len(requests))
            return fake_result(len(requests))

        def wait() -> float:
            waits.append(Batcher.wait(batcher))
            return waits[-1]

        batcher._run_batch = run_batch  # type: ignore[method-assign]
        batcher.wait = wait  # type: ignore[method-assign]
        batcher.start()
        served: Any = object()

        def submit(user: str) -> Any:
            return batcher.submit(served, Request(user, 0.0), 10, False)

        await submit("lone")
        await asyncio.gather(*(submit(f"burst{i}") for i in range(3)))  # one loop turn: 1 batch
        first = asyncio.ensure_future(submit("a"))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, submit("b"))  # under load: b joins a's batch
        await batcher.stop()
    return sizes, waits


def test_idle_server_never_waits_and_a_busy_one_gathers() -> None:
    sizes, waits = asyncio.run(run_scenario())
    assert sizes == [1, 3, 2]
    # idle at first and after the lone request; under load after the burst of three
    assert waits == [0.0, 0.0, WAIT_S]
