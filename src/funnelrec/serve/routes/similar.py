"""``GET /similar``: items similar to an item (item-to-item; a new item falls back to its
tags and category; ``source`` says which answered)."""

from typing import Annotated

from fastapi import APIRouter, Query

from funnelrec.serve.auth import Guard
from funnelrec.serve.errors import ApiError
from funnelrec.serve.routes._common import errors, guards
from funnelrec.serve.schemas import SimilarItem, SimilarResponse
from funnelrec.serve.similar import Content, Cooccurrence, similar_items
from funnelrec.serve.state import ServeState


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    settings = state.settings
    api = APIRouter(tags=["recommend"], dependencies=guards(guard))
    cooc, content = Cooccurrence(), Content()

    @api.get(
        "/similar",
        response_model=SimilarResponse,
        responses=errors(401, 403, 404, 422),
        summary="Items similar to an item",
    )
    async def similar(
        item_id: Annotated[str, Query(min_length=1, max_length=256)],
        k: Annotated[int, Query(ge=1, le=settings.max_k)] = 10,
    ) -> SimilarResponse:
        served = state.current
        key = served.item_key(item_id)
        idx = int(served.item_indices([key])[0])
        if idx < 0:
            raise ApiError(404, "not found", f"unknown item_id {item_id!r}")
        source, items, scores = await state.in_funnel_thread(
            similar_items,
            served,
            cooc,
            content,
            idx,
            k,
            settings.similar_channel,
            state.now(served),
        )
        return SimilarResponse(
            item_id=key,
            source=source,
            items=[
                SimilarItem(item_id=i, score=float(s))
                for i, s in zip(served.item_ids(items), scores.tolist(), strict=True)
            ],
        )

    return api
