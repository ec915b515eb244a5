"""Where content vectors live: an item-table vector column (read by the two-tower's
``content_column``, the ranker's ``vector_columns``, ``mmr``'s ``vector_column`` and any
stage that reads item vectors), Parquet files and ``.npy`` memory-maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from funnelrec.content.registry import F32Matrix
from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
from funnelrec.ragged import BoolArray


def with_vector_column(
    dataset: Dataset, vectors: F32Matrix, name: str = "content", valid: BoolArray | None = None
) -> Dataset:
    """``dataset`` whose item table has a fixed-length ``List[Float32]`` column ``name``
    (``[n_items, d]`` vectors, one per item in ``item_idx`` order; rows with ``valid``
    ``False`` are null)."""
    if vectors.shape[0] != dataset.n_items:
        raise DataError(f"{vectors.shape[0]} vectors for {dataset.n_items} items")
    values = pl.Series(name, np.asarray(vectors, dtype=np.float32)).cast(pl.List(pl.Float32))
    if valid is not None:
        values = pl.select(pl.when(pl.Series(valid)).then(values)).to_series().alias(name)
    return dataset.replace(items=dataset.items.with_columns(values))


def vector_column(items: pl.DataFrame, name: str) -> tuple[F32Matrix, BoolArray]:
    """``[n, d]`` vectors of a fixed-length list column and ``[n]`` which rows have one."""
    if name not in items.columns:
        raise DataError(f"vector column {name!r} not in the item table {items.columns}")
    col = items[name]
    if not isinstance(col.dtype, pl.List | pl.Array):
        raise DataError(f"vector column {name!r} ({col.dtype}) is not a list of numbers")
    valid = col.is_not_null().to_numpy()
    lengths = col.drop_nulls().list.len().unique().to_list()
    if len(lengths) > 1:
        raise DataError(f"vector column {name!r} has rows of lengths {sorted(lengths)}")
    dim = int(lengths[0]) if lengths else 0
    out = np.zeros((items.height, dim), dtype=np.float32)
    if valid.any():
        flat = col.drop_nulls().cast(pl.List(pl.Float32)).explode().to_numpy()
        out[valid] = flat.reshape(-1, dim)
    return out, valid


def save_vectors(path: str | Path, ids: list[Any], vectors: F32Matrix) -> Path:
    """Write ``ids`` and vectors: ``.parquet`` (columns ``item_id``, ``vector``) or ``.npy``
    (vectors only, rows in ``ids`` order; read back as a memory-map)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, np.asarray(vectors, dtype=np.float32))
        return path
    frame = pl.DataFrame({"item_id": ids, "vector": np.asarray(vectors, dtype=np.float32)})
    frame.write_parquet(path)
    return path


def load_vectors(path: str | Path) -> tuple[list[Any] | None, F32Matrix]:
    """``(ids, vectors)`` from ``save_vectors`` (``.npy``: ``ids`` is ``None`` and the
    vectors are a read-only memory-map)."""
    path = Path(path)
    if path.suffix == ".npy":
        return None, np.load(path, mmap_mode="r")
    frame = pl.read_parquet(path)
    return frame["item_id"].to_list(), np.asarray(frame["vector"].to_numpy(), dtype=np.float32)
