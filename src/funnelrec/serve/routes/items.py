"""``PUT /items``: new or changed items, stored durably, then applied to the funnel
(``Funnel.upsert_items``: new dense ids, every recall channel's ``upsert_items`` hook)."""

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from funnelrec.serve.auth import Guard
from funnelrec.serve.catalogue import ItemRecordError, flatten, item_frame
from funnelrec.serve.errors import field_error
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.routes._common import batch_write_route, check_batch_size, guards
from funnelrec.serve.schemas import ItemBatch, ItemsUpserted
from funnelrec.serve.state import ServeState

_SUMMARY = "Add or update catalogue items"
_NOTE_422 = (
    "invalid request: the message names the field (e.g. an attribute whose "
    "values do not fit the item table's column type); nothing is stored"
)


def router(state: ServeState, guard: Guard | None) -> APIRouter:
    api = APIRouter(tags=["items"], dependencies=guards(guard))

    @batch_write_route(api, "PUT", "/items", ItemsUpserted, _SUMMARY, _NOTE_422)
    async def put_items(batch: ItemBatch) -> ItemsUpserted:
        check_batch_size(len(batch.items), state.settings.max_items, "items")
        async with state.catalogue_lock:  # no reload between the store write and the funnel
            served = state.current
            records, new = _records(
                served, [i.model_dump() for i in batch.items], state.now(served)
            )
            await run_in_threadpool(state.store.upsert_items, records)
            await state.in_funnel_thread(served.upsert, records)
        keys = list(dict.fromkeys(r["item_id"] for r in records))
        return ItemsUpserted(
            created=[k for k in keys if k in new],
            updated=[k for k in keys if k not in new],
            n_items=served.dataset.n_items,
        )

    return api


def _records(
    served: ServedFunnel, raw: list[dict[str, Any]], now: float
) -> tuple[list[dict[str, Any]], set[Any]]:
    """Flat records checked against the item table (before anything is written) and the ids
    that are new; new items without ``created_at`` get ``now``."""
    records = []
    for i, record in enumerate(raw):
        try:
            records.append(flatten(record))
        except ItemRecordError as exc:
            raise field_error(("body", "items", i, exc.field), str(exc)) from None
    try:
        _, keys = item_frame(records, served.dataset.item_ids, served.dataset.items.schema)
    except ItemRecordError as exc:  # a column of the whole batch
        raise field_error(("body", "items", exc.field), str(exc)) from None
    known = served.item_indices(keys) >= 0
    new = set()
    for record, key, is_known in zip(records, keys, known, strict=True):
        record["item_id"] = key
        if not is_known:
            record.setdefault("created_at", now)
            new.add(key)
    return records, new
