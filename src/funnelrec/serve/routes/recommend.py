"""``GET /recommend``: the whole funnel for one user, with their live state from the store.

The route below documents and validates the request; valid requests in canonical form are
usually answered before it by ``serve/fastpath.py`` with the same ``recommend_body``.
"""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from funnelrec.serve.auth import Guard
from funnelrec.serve.microbatch import RowResult
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.query import Request, slate_cap
from funnelrec.serve.routes._common import errors, guards, json_response
from funnelrec.serve.schemas import MAX_TIME, RecommendResponse
from funnelrec.serve.state import ServeState

USER_ID_MAX_LENGTH = 256
EXCLUDE_MAX = 1000


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    settings = state.settings
    api = APIRouter(tags=["recommend"], dependencies=guards(guard))

    @api.get(
        "/recommend",
        response_model=RecommendResponse,
        responses=errors(401, 403, 422, 503),
        summary="Recommend items for a user (unknown users get cold-start items)",
    )
    async def recommend(
        user_id: Annotated[str, Query(min_length=1, max_length=USER_ID_MAX_LENGTH)],
        k: Annotated[int | None, Query(ge=1, le=settings.max_k, description="slate size")] = None,
        explain: Annotated[bool, Query(description="include the funnel trace")] = False,
        now: Annotated[float | None, Query(ge=0, le=MAX_TIME, description="request time")] = None,
        exclude: Annotated[
            list[str], Query(max_length=EXCLUDE_MAX, description="item ids not to recommend")
        ] = [],  # noqa: B006 - FastAPI copies defaults per request
    ) -> Response:
        return json_response(await recommend_body(state, user_id, k, explain, now, exclude))

    return api


async def recommend_body(
    state: ServeState,
    user_id: str,
    k: int | None,
    explain: bool,
    now: float | None,
    exclude: Sequence[str],
) -> dict[str, Any]:
    """The response body of a validated request (its impressions are logged)."""
    served, arm = state.loop.pick(user_id)  # the rollout arm (serve/rollout.py)
    at = state.now(served) if now is None else now
    request = Request(served.user_key(user_id), at, tuple(exclude))
    size = k or min(served.funnel.config.k, state.settings.max_k)
    result, teams = await state.loop.submit(served, arm, request, size, explain)
    body = _body(served, user_id, size, result, explain)
    state.loop.logged(body, arm, at, teams)  # request id + impression log
    return body


def _body(
    served: ServedFunnel, user_id: str, k: int, result: RowResult, explain: bool
) -> dict[str, Any]:
    ids = served.item_ids(result.items)
    items = [
        {"item_id": i, "score": float(s), "channels": c}
        for i, s, c in zip(ids, result.scores.tolist(), result.channels, strict=True)
    ]
    body: dict[str, Any] = {
        "user_id": user_id,
        "known_user": result.known_user,
        "k": k,
        "items": items,
        "capped_by": slate_cap(served, k, len(items)),
        "generation": served.generation,
        "trace": None,
        "timings_ms": None,
    }
    if explain:
        body["trace"] = result.trace
        body["timings_ms"] = {s: round(t * 1000, 3) for s, t in result.timings.items()}
        body["timings_ms"]["batch_size"] = result.batch_size
    return body
