"""``GET /users``, ``GET /history``, ``POST /items/lookup``: read-only data for the funnel
inspector (``/ui``) and other tools — active users, a user's history with titles, item records.
The lookup is a POST so that a long id list never meets the HTTP parser's URL limit."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.auth import Guard
from funnelrec.serve.inspector import active_users, items_by_id, user_history
from funnelrec.serve.routes._common import errors, guards
from funnelrec.serve.schemas import Id, Strict
from funnelrec.serve.state import ServeState

MAX_LOOKUP = 1000


class ItemLookup(Strict):
    item_ids: list[Id] = Field(min_length=1, max_length=MAX_LOOKUP)


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

    @api.post(
        "/items/lookup",
        responses=errors(401, 403, 413, 422),
        summary="Item records (title, category) by id; unknown ids get known: false",
    )
    async def lookup(request: ItemLookup) -> dict[str, Any]:
        served = state.current
        return {"items": await state.in_funnel_thread(items_by_id, served, request.item_ids)}

    return api
