"""Column encoders shared by the feature pipeline: vocabularies (with OOV and hashing),
quantile buckets, dense scalers (all JSON-able, so a fitted pipeline is saved and reloaded
exactly: no train/serve skew), and table helpers that pick and pad columns.

Integer codes follow one convention everywhere: ``0`` = missing / padding, ``1`` = out of
vocabulary (a value never seen, or seen fewer than ``min_count`` times), ``2..`` = known.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from funnelrec.ragged import IntArray

PAD, OOV, FIRST = 0, 1, 2
F32Array = npt.NDArray[np.float32]
_MIX = np.uint64(0x9E3779B97F4A7C15)
MAX_TEXT_UNIQUE = 1000


def hash_ints(values: IntArray, buckets: int) -> IntArray:
    """Codes ``2..buckets+1`` of non-negative integer ids by a fixed multiplicative hash."""
    mixed = (values.astype(np.uint64) * _MIX) >> np.uint64(17)
    return (mixed % np.uint64(buckets)).astype(np.int64) + FIRST


def hash_strings(values: Sequence[object], buckets: int) -> IntArray:
    """Codes ``2..buckets+1`` by CRC-32 of ``str(value)`` (stable across runs); ``None`` → 0."""
    return np.asarray(
        [PAD if v is None else zlib.crc32(str(v).encode()) % buckets + FIRST for v in values],
        dtype=np.int64,
    )


@dataclass(frozen=True)
class Vocab:
    """Categorical values → codes (see module doc). ``hash_buckets > 0``: hash, no vocabulary.

    Attributes:
        values: known values (as strings), code ``2 + position``.
        hash_buckets: number of hash buckets (``0``: use ``values``).
    """

    values: tuple[str, ...] = ()
    hash_buckets: int = 0

    @classmethod
    def fit(cls, values: Iterable[object], min_count: int = 1, hash_buckets: int = 0) -> Vocab:
        """Known values: those seen at least ``min_count`` times (sorted)."""
        if hash_buckets > 0:
            return cls((), hash_buckets)
        counts = Counter(str(v) for v in values if v is not None)
        return cls(tuple(sorted(v for v, c in counts.items() if c >= min_count)))

    @property
    def size(self) -> int:
        """Number of codes, padding and OOV included."""
        return FIRST + (self.hash_buckets or len(self.values))

    def encode(self, values: Sequence[object]) -> IntArray:
        """``[n]`` codes of ``values`` (``None`` → 0, unknown → 1)."""
        if self.hash_buckets:
            return hash_strings(values, self.hash_buckets)
        lookup = {v: i + FIRST for i, v in enumerate(self.values)}
        return np.asarray(
            [PAD if v is None else lookup.get(str(v), OOV) for v in values], dtype=np.int64
        )


@dataclass(frozen=True)
class Buckets:
    """Numeric values → quantile-bucket codes ``2..``; NaN → 0.

    Attributes:
        edges: sorted inner bucket boundaries.
    """

    edges: tuple[float, ...]

    @classmethod
    def fit(cls, values: npt.ArrayLike, n: int) -> Buckets:
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return cls(())
        qs = np.quantile(x, np.linspace(0, 1, n + 1)[1:-1])
        return cls(tuple(float(q) for q in np.unique(qs)))

    @property
    def size(self) -> int:
        return FIRST + len(self.edges) + 1

    def encode(self, values: npt.ArrayLike) -> IntArray:
        x = np.asarray(values, dtype=np.float64)
        codes = np.searchsorted(np.asarray(self.edges), x, side="right") + FIRST
        return np.where(np.isfinite(x), codes, PAD).astype(np.int64)


@dataclass(frozen=True)
class Scaler:
    """Dense values → ``(f(x) - mean) / std`` with ``f = log1p(max(x, 0))`` when ``log``;
    missing (NaN) values become ``0`` (the mean)."""

    mean: float
    std: float
    log: bool

    @classmethod
    def fit(cls, values: npt.ArrayLike, log: bool = False) -> Scaler:
        x = _transform(np.asarray(values, dtype=np.float64), log)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return cls(0.0, 1.0, log)
        std = float(x.std())
        return cls(float(x.mean()), std if std > 1e-12 else 1.0, log)

    def encode(self, values: npt.ArrayLike) -> F32Array:
        x = (_transform(np.asarray(values, dtype=np.float64), self.log) - self.mean) / self.std
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _transform(x: npt.NDArray[np.float64], log: bool) -> npt.NDArray[np.float64]:
    return np.log1p(np.maximum(x, 0.0)) if log else x


def to_json(encoder: Vocab | Buckets | Scaler) -> dict[str, Any]:
    return {"type": type(encoder).__name__, **asdict(encoder)}


def from_json(raw: dict[str, Any]) -> Vocab | Buckets | Scaler:
    body: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "type"
    }
    if raw["type"] == "Vocab":
        return Vocab(**body)
    if raw["type"] == "Buckets":
        return Buckets(**body)
    return Scaler(**body)


def auto_columns(table: pl.DataFrame | None, wanted: list[str] | None, side: str) -> list[str]:
    """The attribute columns to encode: ``wanted`` (checked) or the auto-detected ones."""
    if table is None:
        return []
    if wanted is not None:
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise ValueError(f"{side} table has no column(s) {missing}; it has {table.columns}")
        return list(wanted)
    out = []
    for name, dtype in table.schema.items():
        if name in (f"{side}_idx", "tags", "created_at"):
            continue
        text = dtype in (pl.Utf8, pl.Categorical, pl.Boolean)
        unique = table[name].drop_nulls().n_unique()
        small = unique <= MAX_TEXT_UNIQUE and (unique <= 20 or unique <= table.height // 2)
        if (text and small) or (dtype.is_numeric() and unique > 1):
            out.append(name)
    return out


def pad_rows(rows: list[IntArray], width: int) -> IntArray:
    """``[len(rows) + 1, width]`` codes, each row truncated/zero-padded (last row: unknown)."""
    out = np.zeros((len(rows) + 1, width), dtype=np.int64)
    for r, codes in enumerate(rows):
        out[r, : min(len(codes), width)] = codes[:width]
    return out
