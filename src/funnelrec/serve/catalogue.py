"""Item upserts: HTTP/store item records → an item frame for ``Funnel.upsert_items``.

Ids follow the catalogue's type: in a catalogue of integer ids, ``"42"`` is item 42 and a
non-numeric id is rejected; in a catalogue of string ids, ``42`` is ``"42"``. Attribute values
are cast to the item table's column types (an attribute that cannot be cast is rejected, naming
it); new attributes become new columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from funnelrec.data.ids import ExternalId, IdMap
from funnelrec.errors import FunnelError

RESERVED = frozenset({"item_id", "item_idx"})


class ItemRecordError(FunnelError):
    """An item record that cannot join the catalogue; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def has_int_ids(ids: IdMap) -> bool:
    """Whether the map's ids are integers (decided by the first id; empty maps: no)."""
    return len(ids) > 0 and isinstance(ids.external([0])[0], int)


def canonical_id(raw: ExternalId, int_ids: bool) -> ExternalId:
    """``raw`` in the catalogue's id type (non-numeric strings stay strings)."""
    if not int_ids:
        return str(raw)
    if isinstance(raw, int):
        return raw
    try:
        return int(raw)
    except ValueError:
        return raw


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """An API item (with an ``attributes`` mapping) as one flat record without nulls."""
    attributes = record.get("attributes") or {}
    flat = {k: v for k, v in record.items() if k != "attributes"}
    clash = sorted(RESERVED.union(flat).intersection(attributes))
    if clash:
        raise ItemRecordError(f"attributes.{clash[0]}", f"attribute {clash[0]!r} is reserved")
    flat.update(attributes)
    return {k: v for k, v in flat.items() if v is not None}


def item_frame(
    records: Sequence[dict[str, Any]], ids: IdMap, schema: pl.Schema
) -> tuple[pl.DataFrame, list[ExternalId]]:
    """Frame of flat ``records`` (``item_id`` + attributes) typed like ``schema``.

    Returns:
        The frame and the canonical id of each record.
    """
    int_ids = has_int_ids(ids)
    keys = [canonical_id(r["item_id"], int_ids) for r in records]
    if int_ids and any(isinstance(k, str) for k in keys):
        bad = next(k for k in keys if isinstance(k, str))
        raise ItemRecordError("item_id", f"item ids of this catalogue are integers, got {bad!r}")
    columns: dict[str, pl.Series] = {
        "item_id": pl.Series("item_id", keys, dtype=pl.Int64 if int_ids else pl.Utf8)
    }
    names = sorted({k for r in records for k in r if k != "item_id"})
    for name in names:
        values = [r.get(name) for r in records]
        columns[name] = _column(name, values, schema.get(name))
    return pl.DataFrame(columns), keys


def _column(name: str, values: list[Any], dtype: pl.DataType | None) -> pl.Series:
    """One attribute column, cast to ``dtype`` when the item table has it."""
    try:
        series = pl.Series(name, values, strict=True)
        return series if dtype is None else series.cast(dtype, strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        expected = f" (the item table holds {dtype})" if dtype is not None else ""
        raise ItemRecordError(
            name, f"attribute {name!r} has values of mixed or wrong types{expected}"
        ) from None
