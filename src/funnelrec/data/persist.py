"""Save/load a ``Dataset`` as Parquet tables + JSON id maps (part of funnel artifacts)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.io import read_json, write_json

_TABLES = ("users", "impressions", "kg", "item_entities")


def save_dataset(dataset: Dataset, directory: Path) -> None:
    """Write ``dataset`` into an existing (temporary) directory."""
    directory.mkdir(parents=True, exist_ok=True)
    dataset.interactions.write_parquet(directory / "interactions.parquet")
    dataset.items.write_parquet(directory / "items.parquet")
    for name in _TABLES:
        table = getattr(dataset, name)
        if table is not None:
            table.write_parquet(directory / f"{name}.parquet")
    write_json(
        directory / "ids.json",
        {"users": dataset.user_ids.to_json(), "items": dataset.item_ids.to_json()},
    )
    write_json(
        directory / "dataset.json",
        {"name": dataset.name, "feedback": list(dataset.feedback), "meta": dataset.meta},
    )


def load_dataset_dir(directory: Path) -> Dataset:
    """Read a dataset written by ``save_dataset``."""
    ids = read_json(directory / "ids.json")
    info = read_json(directory / "dataset.json")
    tables = {
        name: pl.read_parquet(directory / f"{name}.parquet")
        for name in _TABLES
        if (directory / f"{name}.parquet").exists()
    }
    return Dataset(
        interactions=pl.read_parquet(directory / "interactions.parquet"),
        user_ids=IdMap.from_json(ids["users"]),
        item_ids=IdMap.from_json(ids["items"]),
        items=pl.read_parquet(directory / "items.parquet"),
        feedback=tuple(info["feedback"]),
        name=str(info["name"]),
        meta=dict(info.get("meta", {})),
        **tables,
    )
