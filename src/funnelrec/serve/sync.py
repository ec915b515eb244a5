"""Keeping several server processes in step through their shared store (Redis across hosts).

Requests need no coordination: every process reads users' events from the store per request,
so any process answers any user with the latest events. What a process holds in memory — the
loaded funnel with its ANN index (read-only for requests; a reload builds a new one and swaps
one reference) and the item upserts replayed onto it — follows two published keys:

* ``artifacts``: a process that reloads publishes the artifact path; the others load it too;
* ``items``: every item upsert bumps it; the others apply the records that changed.

Each process polls both versions every ``sync_interval_s`` seconds (one round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from funnelrec.serve.store.base import ItemRecord, Store, StoreError

if TYPE_CHECKING:
    from funnelrec.serve.state import ServeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Published versions, then the item upserts (read in this order, so nothing published
    after the versions is missed: it bumps a version past the one seen)."""

    model_version: int
    model: str | None
    items_version: int
    items: list[ItemRecord]

    @classmethod
    def take(cls, store: Store) -> Snapshot:
        model_version, model = store.published("artifacts")
        items_version, _ = store.published("items")
        return cls(model_version, model, items_version, store.items())


class FleetSync:
    """Follows reloads and item upserts published by the other processes on the store."""

    def __init__(self, state: ServeState, start: Snapshot, interval_s: float) -> None:
        self.state = state
        self.interval_s = interval_s
        self.model_version = start.model_version
        self.items_version = start.items_version
        self.applied = _by_id(start.items)
        self._task: asyncio.Task[None] | None = None

    def adopt(self, snap: Snapshot) -> None:
        """The funnel now serves ``snap``'s item upserts (after a reload)."""
        self.items_version = max(self.items_version, snap.items_version)
        self.applied = _by_id(snap.items)

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleet-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except StoreError as exc:  # the store is down: keep serving, retry later
                log.warning("fleet sync: %s", exc)
            except Exception:  # a bad published artifact must not stop the loop
                log.exception("fleet sync failed; still serving generation %s", self.generation)

    @property
    def generation(self) -> int:
        return self.state.current.generation

    async def check(self) -> None:
        """Reload if another process published an artifact, else apply changed items."""
        store = self.state.store
        model_version, model = await run_in_threadpool(store.published, "artifacts")
        if model_version > self.model_version and model:
            self.model_version = model_version
            await self.state.reload(Path(model), publish=False)
            return
        items_version, _ = await run_in_threadpool(store.published, "items")
        if items_version <= self.items_version:
            return
        records = await run_in_threadpool(store.items)
        changed = [r for r in records if self.applied.get(str(r["item_id"])) != r]
        async with self.state.catalogue_lock:
            if changed:
                served = self.state.current
                await self.state.in_funnel_thread(served.upsert, changed)
            self.items_version = items_version
            self.applied = _by_id(records)


def _by_id(records: list[ItemRecord]) -> dict[str, ItemRecord]:
    return {str(r["item_id"]): r for r in records}
