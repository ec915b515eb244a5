"""The impression log: every ``/recommend`` response's items (request id, user, item,
position, score, model generation, arm, time) written to the store in batches.

A response only appends its rows to an in-memory buffer; a background task writes the
buffer in one store transaction every ``flush_s`` seconds (or as soon as it holds
``max_rows``), and the rest on shutdown. A crash loses at most the last ``flush_s`` of
impressions, never events (those are written before ``/events`` answers). A failed write is
retried on the next flush; past ``max_buffer`` rows the oldest are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool

from funnelrec.serve.store.base import Impression, Store, StoreError

log = logging.getLogger(__name__)


def new_request_id() -> str:
    return uuid.uuid4().hex


class ImpressionLog:
    """Buffered, batched writer of impressions to a store."""

    def __init__(
        self, store: Store, flush_s: float = 0.25, max_rows: int = 5000, max_buffer: int = 500_000
    ) -> None:
        self.store = store
        self.flush_s = flush_s
        self.max_rows = max_rows
        self.max_buffer = max_buffer
        self.written = 0
        self.dropped = 0
        self._buffer: list[Impression] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def record(self, rows: list[Impression]) -> None:
        self._buffer.extend(rows)
        if len(self._buffer) > self.max_buffer:
            over = len(self._buffer) - self.max_buffer
            del self._buffer[:over]
            self.dropped += over
        if len(self._buffer) >= self.max_rows:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="impressions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except StoreError as exc:  # keep the rows; the next flush retries
                log.warning("impression log: %s", exc)

    async def flush(self) -> int:
        """Write everything buffered now (one transaction); returns the rows written."""
        rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        try:
            await run_in_threadpool(self.store.append_impressions, rows)
        except BaseException:
            self._buffer[:0] = rows
            raise
        self.written += len(rows)
        return len(rows)

    def stats(self) -> dict[str, Any]:
        return {"buffered": len(self._buffer), "written": self.written, "dropped": self.dropped}
