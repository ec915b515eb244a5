"""``GET /health`` and ``GET /metrics`` (never behind a token: for probes and scrapers)."""

import os

import torch
from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.routes._common import errors
from funnelrec.serve.schemas import Health
from funnelrec.serve.state import ServeState


def router(state: ServeState) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get("/health", response_model=Health, responses=errors(503), summary="Liveness")
    async def health() -> Health:
        await run_in_threadpool(state.store.ping)  # StoreError → 503
        served = state.current
        return Health(
            status="ok",
            generation=served.generation,
            artifacts=served.artifacts.name,  # never the absolute path
            loaded_at=served.loaded_at,
            pid=os.getpid(),  # which of several worker processes answered
            n_users=served.dataset.n_users,
            n_items=served.dataset.n_items,
            store=state.store.url.split(":", 1)[0],
            threads=torch.get_num_threads(),
        )

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return api
