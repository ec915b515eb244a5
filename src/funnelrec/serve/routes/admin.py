"""``POST /admin/reload``: swap in a newly trained artifact (bearer token required).

The new funnel is loaded completely (with the store's item upserts) in a worker thread while
the old one keeps serving; then one reference is swapped. A failed load leaves the old one.
"""

import logging
from pathlib import Path

from fastapi import APIRouter

from funnelrec.errors import FunnelError
from funnelrec.serve.auth import Guard
from funnelrec.serve.errors import ApiError
from funnelrec.serve.routes._common import errors, guards
from funnelrec.serve.schemas import ReloadRequest, ReloadResponse
from funnelrec.serve.state import ServeState
from funnelrec.serve.store.base import StoreError

log = logging.getLogger(__name__)


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    api = APIRouter(prefix="/admin", tags=["admin"], dependencies=guards(guard))

    @api.post(
        "/reload",
        response_model=ReloadResponse,
        responses=errors(
            401,
            403,
            422,
            503,
            notes={
                422: "invalid request, or error 'reload failed': the artifact is missing, "
                "corrupt or of an unsupported format (the message names the file); "
                "still serving the old model"
            },
        ),
        summary="Load a new artifact and swap it in atomically",
    )
    async def reload(request: ReloadRequest | None = None) -> ReloadResponse:
        path = Path(request.artifacts) if request and request.artifacts else None
        try:
            served, seconds = await state.reload(path)
        except StoreError:
            state.metrics.reloads.labels("failed").inc()
            raise
        except Exception as exc:  # any failure to load: the old model keeps serving
            state.metrics.reloads.labels("failed").inc()
            if not isinstance(exc, (FunnelError, OSError, ValueError, KeyError)):
                log.exception("reload of %s failed", path or state.settings.artifacts)
            raise ApiError(
                422, "reload failed", f"reload failed; still serving the old model: {exc}"
            ) from None
        state.metrics.reloads.labels("ok").inc()
        return ReloadResponse(
            generation=served.generation,
            artifacts=str(served.artifacts),
            load_s=round(seconds, 3),
            n_items=served.dataset.n_items,
        )

    return api
