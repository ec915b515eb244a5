"""Side features as integer codes for embedding models (``0`` = missing/unknown everywhere).

(Not the rankers' ``FeatureBuilder``: that is ``funnelrec/features.py``.)

User attributes: categorical columns of the users table → ``[n_users, F]`` codes.
Item attributes: category code ``[n_items]``, padded tag codes ``[n_items, T]`` and an optional
fixed-length float content vector ``[n_items, C]`` from a list-typed item column.
The vocabularies are plain string lists, so fitted encoders are saved as JSON and reused to
encode brand-new items or users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from funnelrec.errors import ConfigError
from funnelrec.ragged import IntArray

F32Matrix = npt.NDArray[np.float32]
_MAX_INT_CARDINALITY = 200


def auto_user_columns(users: pl.DataFrame | None, max_unique: int = 1000) -> list[str]:
    """Categorical-looking columns: strings/booleans with at most ``max_unique`` values and
    integer columns with at most 200 values (``user_idx`` excluded)."""
    if users is None:
        return []
    cols = []
    for name, dtype in users.schema.items():
        if name == "user_idx":
            continue
        n_unique = users[name].n_unique()
        is_text = dtype in (pl.Utf8, pl.Categorical, pl.Boolean)
        limit = max_unique if is_text else _MAX_INT_CARDINALITY
        if (is_text or dtype.is_integer()) and n_unique <= limit:
            cols.append(name)
    return cols


def fit_vocab(values: pl.Series) -> list[str]:
    """Sorted distinct non-null values as strings."""
    return sorted({str(v) for v in values.drop_nulls().to_list()})


def encode(values: pl.Series, vocab: list[str]) -> IntArray:
    """Codes ``1..len(vocab)`` for known values, ``0`` for nulls and unseen values."""
    lookup = {v: i + 1 for i, v in enumerate(vocab)}
    return np.asarray(
        [0 if v is None else lookup.get(str(v), 0) for v in values.to_list()], dtype=np.int64
    )


def encode_table(table: pl.DataFrame, columns: list[str], vocabs: list[list[str]]) -> IntArray:
    """``[rows, F]`` codes of ``columns`` (missing columns encode as ``0``)."""
    out = np.zeros((table.height, len(columns)), dtype=np.int64)
    for j, (col, vocab) in enumerate(zip(columns, vocabs, strict=True)):
        if col in table.columns:
            out[:, j] = encode(table[col], vocab)
    return out


@dataclass(frozen=True)
class ItemVocab:
    """Fitted item-attribute vocabularies (JSON-able) and the content column settings."""

    categories: list[str]
    tags: list[str]
    max_tags: int
    content_column: str | None
    content_dim: int

    @classmethod
    def fit(cls, items: pl.DataFrame, content_column: str | None, max_tags: int) -> ItemVocab:
        cats = fit_vocab(items["category"]) if "category" in items.columns else []
        tags = fit_vocab(items["tags"].explode()) if "tags" in items.columns else []
        dim = 0
        if content_column is not None:
            dim = _content(items, content_column, None).shape[1]
        return cls(cats, tags, max_tags, content_column, dim)

    def encode(self, items: pl.DataFrame) -> tuple[IntArray, IntArray, F32Matrix]:
        """``(category [n], tags [n, max_tags], content [n, content_dim])`` codes of a table
        (absent columns encode as missing)."""
        n = items.height
        cat = (
            encode(items["category"], self.categories)
            if "category" in items.columns
            else np.zeros(n, dtype=np.int64)
        )
        tags = np.zeros((n, self.max_tags), dtype=np.int64)
        if "tags" in items.columns and self.max_tags > 0:
            lookup = {t: i + 1 for i, t in enumerate(self.tags)}
            for r, row in enumerate(items["tags"].to_list()):
                codes = [lookup[t] for t in (row or []) if t in lookup][: self.max_tags]
                tags[r, : len(codes)] = codes
        content = np.zeros((n, self.content_dim), dtype=np.float32)
        if self.content_column is not None and self.content_column in items.columns:
            content = _content(items, self.content_column, self.content_dim)
        return cat, tags, content


def _content(items: pl.DataFrame, column: str, dim: int | None) -> F32Matrix:
    """Rows of a list-of-floats column as ``[n, dim]`` (nulls → zeros)."""
    if column not in items.columns:
        raise ConfigError(f"content column {column!r} not in the item table {items.columns}")
    rows = items[column].to_list()
    width = dim if dim is not None else max((len(r) for r in rows if r is not None), default=0)
    out = np.zeros((len(rows), width), dtype=np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            if len(r) != width:
                raise ConfigError(
                    f"content column {column!r}: row {i} has {len(r)} values, expected {width}"
                )
            out[i] = r
    return out
