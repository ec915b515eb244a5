"""The serving store as training data: ``funnelrec fit --data sqlite:///events.db`` (or
``redis://...``), alone or stacked on a base dataset (``--data base --data sqlite:///...``),
and ``funnelrec export`` (events, impressions, request links to Parquet).

Events become interactions with one feedback column per event type (``click``, ``like``...:
1 where the event has that type, else 0). Impressions become ``Dataset.impressions``: an
impression is ``clicked`` when the same user clicked the same item at or after the time it
was shown. Only **examined** impressions train (position-bias correction: those at or
above the response's lowest click, or in its first two positions; ``export`` keeps every
row with the ``examined`` flag). Stacked on a base dataset, the base's id maps are extended
(its ids keep their dense indices), new items from the store's upserts join the item
table, and base rows get 0 in feedback columns they lack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.errors import DataError
from funnelrec.serve.catalogue import canonical_id, has_int_ids
from funnelrec.serve.store.base import Store, StoreError, open_store

STORE_PREFIXES = ("sqlite:///", "redis://", "rediss://", "unix://")


def is_store_spec(spec: str) -> bool:
    return spec.startswith(STORE_PREFIXES)


def open_spec(spec: str) -> Store:
    """Open a store URL for reading (``DataError`` naming it when that fails)."""
    if spec.startswith("sqlite:///") and spec != "sqlite:///:memory:":
        path = Path(spec.removeprefix("sqlite:///"))
        if not path.is_file():
            raise DataError(f"{spec}: no such store file {path}")
    try:
        return open_store(spec)
    except StoreError as exc:
        raise DataError(str(exc)) from None


def store_frames(store: Store) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(events, impressions, links)`` of a store as frames of external (string) ids."""
    ev = store.events()
    events = pl.DataFrame(
        {
            "user_id": [e.user_id for e in ev],
            "item_id": [e.item_id for e in ev],
            "type": [e.type for e in ev],
            "timestamp": [e.timestamp for e in ev],
        },
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "type": pl.Utf8, "timestamp": pl.Float64},
    )
    imp_schema = {
        "request_id": pl.Utf8, "user_id": pl.Utf8, "item_id": pl.Utf8, "position": pl.Int64,
        "score": pl.Float64, "generation": pl.Int64, "arm": pl.Utf8, "timestamp": pl.Float64,
    }  # fmt: skip
    imp = store.impressions()
    impressions = pl.DataFrame([vars(r) for r in imp], schema=imp_schema, orient="row")
    if impressions.height:
        impressions = _examined(_label_clicks(impressions, events))
    else:
        impressions = impressions.with_columns(
            pl.lit(0, dtype=pl.Int8).alias("clicked"), pl.lit(True).alias("examined")
        )
    fb = store.feedback()
    links = pl.DataFrame(
        {
            "request_id": [f.request_id for f in fb],
            "user_id": [f.event.user_id for f in fb],
            "item_id": [f.event.item_id for f in fb],
            "type": [f.event.type for f in fb],
            "timestamp": [f.event.timestamp for f in fb],
        },
        schema={k: events.schema.get(k, pl.Utf8) for k in ("request_id", *events.columns)},
    )
    return events, impressions, links


def _label_clicks(impressions: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``clicked`` = the user clicked the item at or after the impression's time."""
    clicks = (
        events.filter(pl.col("type") == "click")
        .group_by("user_id", "item_id")
        .agg(pl.col("timestamp").max().alias("last_click"))
    )
    return (
        impressions.join(clicks, on=["user_id", "item_id"], how="left")
        .with_columns(
            (pl.col("last_click") >= pl.col("timestamp"))
            .fill_null(False)
            .cast(pl.Int8)
            .alias("clicked")
        )
        .drop("last_click")
    )


def _examined(impressions: pl.DataFrame, top: int = 2) -> pl.DataFrame:
    """Position-bias correction ("skip above", Joachims 2005): an impression counts as
    examined when it is at or above the response's lowest click (or in the ``top`` first
    positions); unexamined non-clicks say nothing about the item and are not negatives."""
    deepest = (
        (pl.when(pl.col("clicked") == 1).then(pl.col("position")).otherwise(top - 1))
        .max()
        .over("request_id")
    )
    return impressions.with_columns((pl.col("position") <= deepest).alias("examined"))


def export_store(spec: str, out: Path) -> dict[str, int]:
    """Write ``events.parquet``, ``impressions.parquet`` and ``links.parquet`` to ``out``."""
    store = open_spec(spec)
    try:
        frames = dict(zip(("events", "impressions", "links"), store_frames(store), strict=True))
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        tmp = out / f".{name}.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(out / f"{name}.parquet")
    return {name: frame.height for name, frame in frames.items()}


def load_store_dataset(
    spec: str, base: Dataset | None = None, examined_only: bool = True
) -> Dataset:
    """A ``Dataset`` from a store's events and impressions, on top of ``base`` if given
    (``examined_only=False``: every impression trains, without the position-bias correction)."""
    store = open_spec(spec)
    try:
        events, impressions, _ = store_frames(store)
        items = store.items()
    finally:
        store.close()
    if base is None and events.is_empty():
        raise DataError(f"{spec}: the store holds no events to train on")
    if not examined_only:
        impressions = impressions.with_columns(pl.lit(True).alias("examined"))
    return stack(base, events, impressions, items, name=f"store:{spec}")


def stack(
    base: Dataset | None,
    events: pl.DataFrame,
    impressions: pl.DataFrame,
    items: list[dict[str, Any]],
    name: str = "store",
) -> Dataset:
    """``base`` (or an empty dataset) with the store's rows appended (see the module doc)."""
    users = IdMap(base.user_ids.ids if base else (), name="user_id")
    catalogue = IdMap(base.item_ids.ids if base else (), name="item_id")
    int_users = base is not None and has_int_ids(base.user_ids)
    int_items = base is not None and has_int_ids(base.item_ids)
    n_before = len(catalogue)
    item_table = (
        base.items
        if base is not None
        else pl.DataFrame({"item_idx": []}, schema={"item_idx": pl.Int64})
    )
    new_items = [r for r in items if canonical_id(r["item_id"], int_items) not in catalogue]
    catalogue.extend([canonical_id(r["item_id"], int_items) for r in new_items])
    types = sorted(set(events["type"].to_list()))
    feedback = tuple(dict.fromkeys([*(base.feedback if base else ()), *types]))
    rows = pl.DataFrame(
        {
            "user_idx": users.extend([canonical_id(u, int_users) for u in events["user_id"]]),
            "item_idx": catalogue.extend([canonical_id(i, int_items) for i in events["item_id"]]),
            "timestamp": events["timestamp"].to_numpy(),
            **{t: (events["type"] == t).cast(pl.Float32).to_numpy() for t in types},
        },
        schema_overrides={"user_idx": pl.Int64, "item_idx": pl.Int64, "timestamp": pl.Float64},
    )
    imp = _impression_rows(impressions, users, catalogue, int_users, int_items)
    interactions = (
        rows if base is None else pl.concat([base.interactions, rows], how="diagonal_relaxed")
    )
    interactions = interactions.with_columns(pl.col(list(feedback)).fill_null(0.0))
    item_table = _grow_items(item_table, new_items, n_before, len(catalogue))
    old_imp = base.impressions if base is not None else None
    return Dataset(
        interactions=interactions,
        user_ids=users,
        item_ids=catalogue,
        items=item_table,
        users=None if base is None or base.users is None else _grow_users(base.users, len(users)),
        impressions=imp if old_imp is None else pl.concat([old_imp, imp], how="diagonal_relaxed"),
        kg=base.kg if base else None,
        item_entities=base.item_entities if base else None,
        feedback=feedback,
        name=base.name if base else name,
        meta=base.meta if base else {},
    )


def _impression_rows(
    imp: pl.DataFrame, users: IdMap, items: IdMap, int_users: bool, int_items: bool
) -> pl.DataFrame:
    known = items.lookup([canonical_id(i, int_items) for i in imp["item_id"]])
    frame = pl.DataFrame(
        {
            "user_idx": users.extend([canonical_id(u, int_users) for u in imp["user_id"]]),
            "item_idx": known,
            "timestamp": imp["timestamp"].to_numpy(),
            "clicked": imp["clicked"].cast(pl.Int8).to_numpy(),
        },
        schema_overrides={"user_idx": pl.Int64, "item_idx": pl.Int64, "timestamp": pl.Float64},
    )
    return frame.filter((pl.col("item_idx") >= 0) & imp["examined"])


def _grow_items(
    table: pl.DataFrame, records: list[dict[str, Any]], start: int, total: int
) -> pl.DataFrame:
    """The item table with a row per new item (their stored attributes where they fit)."""
    if total == table.height:
        return table
    idx = np.arange(table.height, total, dtype=np.int64)
    new = pl.DataFrame({"item_idx": idx})
    attrs = {k for r in records for k in r if k in table.columns and k != "item_idx"}
    for key in sorted(attrs):
        values = [r.get(key) for r in records] + [None] * (total - start - len(records))
        try:
            new = new.with_columns(pl.Series(key, values).cast(table.schema[key]))
        except (pl.exceptions.PolarsError, TypeError, ValueError):
            continue  # an attribute the table cannot hold is left out
    return pl.concat([table, new], how="diagonal_relaxed")


def _grow_users(table: pl.DataFrame, total: int) -> pl.DataFrame:
    if total == table.height:
        return table
    new = pl.DataFrame({"user_idx": np.arange(table.height, total, dtype=np.int64)})
    return pl.concat([table, new], how="diagonal_relaxed")


def load_specs(specs: list[str], examined_only: bool = True) -> Dataset:
    """``--data`` given one or more times: the first may be any dataset spec, the rest (or
    all) store URLs stacked in order."""
    from funnelrec.data.loaders import load_dataset

    if not specs:
        raise DataError("no --data given")
    first, rest = specs[0], specs[1:]
    if is_store_spec(first):
        dataset = load_store_dataset(first, examined_only=examined_only)
    else:
        dataset = load_dataset(first)
    for spec in rest:
        if not is_store_spec(spec):
            raise DataError(
                f"--data {spec!r}: only store URLs (sqlite:///..., redis://...) can be stacked "
                "on the first dataset"
            )
        dataset = load_store_dataset(spec, base=dataset, examined_only=examined_only)
    return dataset
