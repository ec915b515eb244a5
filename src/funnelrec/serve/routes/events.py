"""``POST /events``: a batch of events, stored durably before the answer; the users' next
``/recommend`` sees them (history and seen filter).

Policy: events naming items the funnel does not know are rejected — the whole batch, with the
unknown ids listed (HTTP 422); upsert the items first (``PUT /items``). Timestamps later than
``now + max_future_s`` are rejected (422 naming the field). Nothing of a rejected or failed
batch is stored.
"""

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.auth import Guard
from funnelrec.serve.errors import ApiError, field_error
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.routes._common import batch_write_route, check_batch_size, guards
from funnelrec.serve.schemas import EventBatch, EventsAccepted
from funnelrec.serve.state import ServeState
from funnelrec.serve.store.base import Event

_SUMMARY = "Ingest a batch of user events"
_NOTE_422 = (
    "invalid request (the message names the field), or unknown item ids: "
    "error 'unknown items', detail.unknown_item_ids lists them; nothing is stored"
)


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    settings = state.settings
    api = APIRouter(tags=["events"], dependencies=guards(guard))

    @batch_write_route(api, "POST", "/events", EventsAccepted, _SUMMARY, _NOTE_422)
    async def post_events(batch: EventBatch) -> EventsAccepted:
        check_batch_size(len(batch.events), settings.max_events, "events")
        received = time.time()
        _check_timestamps(batch, received + settings.max_future_s, received)
        events = _events(state.current, batch, received)
        await run_in_threadpool(state.store.append_events, events)
        state.metrics.events.inc(len(events))
        await state.loop.on_events(events, [e.request_id for e in batch.events])
        return EventsAccepted(accepted=len(events), users=len({e.user_id for e in events}))

    return api


def _check_timestamps(batch: EventBatch, latest: float, received: float) -> None:
    for i, e in enumerate(batch.events):
        if e.timestamp is not None and e.timestamp > latest:
            raise field_error(
                ("body", "events", i, "timestamp"),
                f"timestamp {e.timestamp} is in the future (server time {received:.0f})",
            )


def _events(served: ServedFunnel, batch: EventBatch, received: float) -> list[Event]:
    """Store events with canonical ids; 422 listing the unknown items, if any."""
    items = [served.item_key(e.item_id) for e in batch.events]
    known = served.item_indices(items) >= 0
    unknown = sorted({str(i) for i, ok in zip(items, known, strict=True) if not ok})
    if unknown:
        raise ApiError(
            422,
            "unknown items",
            f"{len(unknown)} unknown item id(s); nothing stored: upsert them with PUT /items",
            detail={"unknown_item_ids": unknown[:100]},
        )
    return [
        Event(
            user_id=str(served.user_key(e.user_id)),
            item_id=str(item),
            type=e.type,
            timestamp=received if e.timestamp is None else e.timestamp,
        )
        for e, item in zip(batch.events, items, strict=True)
    ]
