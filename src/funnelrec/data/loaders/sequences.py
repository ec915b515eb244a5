"""Sequence text files: one user per line, ``user item_1 item_2 ... item_n`` in order.

As in the S3-Rec/SASRec preprocessing (e.g. ``Beauty.txt``). There are no timestamps: an event's
timestamp is its position in the user's sequence, so sorting by time keeps the file order.
An optional ``{"item": [attribute, ...]}`` JSON gives item ``tags`` and ``category``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders._text import data_error, read_lines, require_file


def load_sequences(
    path: str | Path, attributes_json: str | Path | None = None, *, name: str | None = None
) -> Dataset:
    """Load a sequence file (and optionally an item-to-attributes JSON).

    Ids that are all integers become ``Int64`` ids, otherwise strings. Blank lines are skipped; a
    user may span several lines (the sequence continues).

    Args:
        path: the sequence text file.
        attributes_json: JSON object mapping item id (string) to a list of attribute ids;
            gives ``tags`` (List[str]) and ``category`` (first attribute).
        name: dataset name; defaults to the file stem.

    Returns:
        A ``Dataset`` without feedback columns; items are indexed in order of first appearance.

    Raises:
        DataError: missing/malformed files, naming file and line.
    """
    seq_path = Path(path)
    frame = _read_events(seq_path)
    items = None
    if attributes_json is not None:
        attrs = _read_attributes(Path(attributes_json), frame["item_id"].dtype)
        order = frame.select(pl.col("item_id").unique(maintain_order=True))
        items = pl.concat(
            [
                order.join(attrs, on="item_id", how="left", maintain_order="left"),
                attrs.join(order, on="item_id", how="anti", maintain_order="left"),
            ]
        )
    dataset = Dataset.from_frame(frame, items=items, name=name or seq_path.stem)
    meta: dict[str, Any] = {"format": "sequences", "source": str(seq_path)}
    if attributes_json is not None:
        meta["attributes"] = str(attributes_json)
    return dataset.replace(meta=meta)


def _read_events(path: Path) -> pl.DataFrame:
    """``user_id, item_id, timestamp`` (position within the user), one row per event."""
    tokens = read_lines(path).select(pl.col("text").str.extract_all(r"\S+").alias("tok"))
    events = (
        tokens.select(
            pl.col("tok").list.first().alias("user_id"),
            pl.col("tok").list.slice(1).alias("item_id"),
        )
        .explode("item_id")
        .drop_nulls("item_id")
    )
    events = events.with_columns(
        _int_if_possible(events["user_id"]), _int_if_possible(events["item_id"])
    )
    position = pl.int_range(pl.len()).over("user_id").cast(pl.Float64)
    return events.select("user_id", "item_id", position.alias("timestamp"))


def _int_if_possible(ids: pl.Series) -> pl.Series:
    """``ids`` as Int64 when every value is a canonical integer literal (``"7"``, not ``"07"``)."""
    as_int = ids.cast(pl.Int64, strict=False)
    return as_int if (as_int.cast(pl.Utf8) == ids).fill_null(False).all() else ids


def _read_attributes(path: Path, id_dtype: pl.DataType) -> pl.DataFrame:
    """Item table ``item_id, category, tags`` from an item-to-attributes JSON object."""
    try:
        data = json.loads(require_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise data_error(path, f"invalid JSON: {err.msg}", line=err.lineno) from None
    if not isinstance(data, dict):
        raise data_error(path, "expected a JSON object {item_id: [attribute, ...]}")
    bad = next((k for k, v in data.items() if not isinstance(v, list)), None)
    if bad is not None:
        raise data_error(path, f"attributes of item {bad!r} are not a list")
    tags = [[str(a) for a in values] for values in data.values()]
    keys = pl.Series("item_id", list(data.keys()), dtype=pl.Utf8)
    ids = keys.cast(id_dtype, strict=False)
    if ids.null_count():
        key = keys.filter(ids.is_null())[0]
        raise data_error(path, f"item id {key!r} does not match the sequence ids ({id_dtype})")
    frame = pl.DataFrame({"item_id": ids, "tags": pl.Series(tags, dtype=pl.List(pl.Utf8))})
    return frame.with_columns(pl.col("tags").list.first().alias("category")).select(
        "item_id", "category", "tags"
    )
