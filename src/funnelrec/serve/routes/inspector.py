"""``GET /users``, ``GET /history``, ``GET /items``: read-only data for the funnel inspector
(``/ui``) and other tools — active users, a user's history with titles, item records."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.auth import Guard
from funnelrec.serve.inspector import active_users, items_by_id, user_history
from funnelrec.serve.routes._common import errors, guards
from funnelrec.serve.state import ServeState

MAX_LOOKUP = 500


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    settings = state.settings
    api = APIRouter(tags=["inspect"], dependencies=guards(guard))

    @api.get("/users", responses=errors(401, 403, 422), summary="The most active known users")
    async def users(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        served = state.current
        return {"users": await state.in_funnel_thread(active_users, served, limit)}

    @api.get(
        "/history",
        responses=errors(401, 403, 422, 503),
        summary="A user's latest behaviours (training history and live events) with titles",
    )
    async def history(
        user_id: Annotated[str, Query(min_length=1, max_length=256)],
        limit: Annotated[int, Query(ge=1, le=settings.history_limit)] = 20,
    ) -> dict[str, Any]:
        served = state.current
        key = served.user_key(user_id)
        user_state = await run_in_threadpool(state.store.user_state, str(key), limit)
        rows = await state.in_funnel_thread(user_history, served, key, user_state, limit)
        return {"user_id": user_id, "known_user": served.user_index(key) >= 0, "items": rows}

    @api.get("/items", responses=errors(401, 403, 422), summary="Item records (title, category)")
    async def items(
        item_id: Annotated[list[str], Query(min_length=1, max_length=MAX_LOOKUP)],
    ) -> dict[str, Any]:
        served = state.current
        return {"items": await state.in_funnel_thread(items_by_id, served, item_id)}

    return api
