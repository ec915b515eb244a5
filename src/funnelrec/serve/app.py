"""``create_app(settings)``: the FastAPI app over a saved funnel (no module-level state).

Routes: ``GET /recommend``, ``POST /events``, ``PUT /items``, ``GET /similar``,
``GET /health``, ``GET /metrics``, ``POST /admin/reload``; the funnel inspector at ``GET /ui``
with its read-only ``GET /users``, ``GET /history``, ``POST /items/lookup``. Run it with
``funnelrec serve`` (uvicorn, one process: concurrent requests are batched and run on one
funnel thread). Canonical ``GET /recommend`` requests are answered by ``serve/fastpath.py``
before FastAPI's routing (same answers, less CPU).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from funnelrec import __version__
from funnelrec.serve.auth import token_guard
from funnelrec.serve.errors import install_error_handlers
from funnelrec.serve.fastpath import PATH, RecommendFastPath
from funnelrec.serve.limits import BodyLimitMiddleware
from funnelrec.serve.metrics import MetricsMiddleware
from funnelrec.serve.routes import admin, events, inspector, items, ops, recommend, similar, ui
from funnelrec.serve.settings import Settings
from funnelrec.serve.state import ServeState
from funnelrec.serve.store.base import Store


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Load the artifact and open the store (``store`` overrides ``settings.store``)."""
    state = ServeState.open(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        state.sync.start()
        state.loop.start()
        try:
            yield
        finally:
            await state.loop.stop()
            await state.sync.stop()
            await state.batcher.stop()
            state.funnel_thread.shutdown(wait=True)
            state.store.close()

    app = FastAPI(
        title="funnelrec",
        version=__version__,
        description="Multi-stage recommender: recall → pre-rank → rank → re-rank, served live.",
        lifespan=lifespan,
    )
    app.state.serve = state
    public = token_guard(settings.api_token, required=False, scheme_name="api token")
    admin_guard = token_guard(settings.admin_token, required=True, scheme_name="admin token")
    recommend_router = recommend.router(state, public)
    app.include_router(recommend_router)
    app.include_router(similar.router(state, public))
    app.include_router(events.router(state, public))
    # catalogue writes (anyone could rename an item): the catalogue token, else the admin one
    catalogue = settings.catalogue_token or settings.admin_token
    catalogue_guard = token_guard(catalogue, required=True, scheme_name="catalogue token")
    app.include_router(items.router(state, catalogue_guard))
    app.include_router(ops.router(state))
    app.include_router(admin.router(state, admin_guard))
    app.include_router(inspector.router(state, public))
    app.include_router(ui.router())
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.recommend_fast_path:
        route = next(r for r in recommend_router.routes if getattr(r, "path", None) == PATH)
        app.add_middleware(RecommendFastPath, state=state, token=settings.api_token, route=route)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app
