"""``ServeState``: what one app holds — settings, store, metrics, batcher and the funnel being
served. ``current`` is swapped as one reference assignment; a request reads it once and uses
that funnel to the end, so reloads never fail in-flight requests."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from funnelrec.serve.loop import Loop
from funnelrec.serve.metrics import Metrics
from funnelrec.serve.microbatch import Batcher
from funnelrec.serve.model import ServedFunnel, load_served
from funnelrec.serve.settings import Settings, server_threads
from funnelrec.serve.store.base import Store, open_store
from funnelrec.serve.sync import FleetSync, Snapshot
from funnelrec.threads import apply_threads

T = TypeVar("T")
log = logging.getLogger(__name__)


class ServeState:
    """The app's state (created by ``create_app``; nothing is module-global)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        served: ServedFunnel,
        snapshot: Snapshot | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.current = served
        self.metrics = Metrics()
        self.metrics.generation.set(served.generation)
        self.funnel_thread = ThreadPoolExecutor(1, thread_name_prefix="funnel")
        self.batcher = Batcher(
            self.metrics,
            self.funnel_thread,
            lambda users: store.user_states(users, settings.history_limit),
            settings.batch_max,
            settings.batch_wait_ms / 1000,
        )
        self.catalogue_lock = asyncio.Lock()  # serialises item upserts and reloads
        # other processes on the same store: their reloads and item upserts (serve/sync.py)
        self.sync = FleetSync(self, snapshot or Snapshot.take(store), settings.sync_interval_s)
        self.loop = Loop(self)  # impressions, online counters, rollout, refit (serve/loop.py)

    @classmethod
    def open(cls, settings: Settings, store: Store | None = None) -> ServeState:
        """Open the store and load the artifact (with the store's item upserts).

        A process joins its fleet's current state: when another process sharing the store
        has published a reload (``/admin/reload``), it loads that artifact rather than the
        configured one (a worker restarted after a reload must not serve the old funnel).
        To deploy a new artifact to a running fleet, reload it, or use a fresh store."""
        apply_threads(server_threads(settings), export=False)  # a refit child keeps its own
        store = store or open_store(settings.store, prefix=settings.redis_prefix)
        try:
            snapshot = Snapshot.take(store)
            artifacts = Path(settings.artifacts)
            published = Path(snapshot.model) if snapshot.model else None
            if published is not None and not published.is_dir():  # removed since: configured
                log.warning("the fleet's last reloaded artifact %s is gone; serving %s",
                            published, artifacts)  # fmt: skip
            elif published is not None and published != artifacts.absolute():
                log.warning(
                    "serving %s, the artifact the fleet reloaded last, not %s",
                    published,
                    artifacts,
                )
                artifacts = published
            served = load_served(artifacts, snapshot.items, generation=1)
        except BaseException:
            store.close()
            raise
        gc.freeze()
        return cls(settings, store, served, snapshot)

    async def in_funnel_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the funnel thread (every funnel operation goes there)."""
        return await asyncio.get_running_loop().run_in_executor(self.funnel_thread, fn, *args)

    def now(self, served: ServedFunnel) -> float:
        """Request time: the wall clock, or the data's latest timestamp (``clock="data"``)."""
        if self.settings.clock == "data":
            return served.dataset.max_timestamp
        return time.time()

    async def reload(
        self, artifacts: Path | None = None, publish: bool = True
    ) -> tuple[ServedFunnel, float]:
        """Load ``artifacts`` (default: the configured directory) fully in a worker thread,
        then swap it in; returns the new funnel and the load time in seconds. ``publish``:
        record the path in the store so the other server processes load it too."""
        async with self.catalogue_lock:
            start = time.perf_counter()
            path = artifacts or self.settings.artifacts
            generation = self.current.generation + 1
            snapshot = await run_in_threadpool(Snapshot.take, self.store)
            served = await run_in_threadpool(load_served, path, snapshot.items, generation)
            self.loop.adopt(served)
            gc.freeze()  # the loaded model leaves the GC's scans (no pauses proportional to it)
            self.current = served
            self.sync.adopt(snapshot)
            self.metrics.generation.set(generation)
            if publish:
                target = str(Path(path).absolute())  # the link, not one version of it
                version = await run_in_threadpool(self.store.publish, "artifacts", target)
                self.sync.model_version = version
            return served, time.perf_counter() - start
