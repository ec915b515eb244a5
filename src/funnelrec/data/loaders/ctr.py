"""Tabular CTR samples with their own train/dev/test files: criteo-sample and avazu-sample.

Both are read as strings (empty = missing). ``CTRTable.encode`` fits the preprocessing on
train only and applies it to every part: integer fields are log-transformed
(``log1p(max(x, 0))``) and standardised, missing → 0; categorical values seen fewer than
``min_count`` (2) times in train → out of vocabulary. The result is one ``Batch`` per part
(labels included) and the ``Schema`` the models are built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from funnelrec.batch import Batch, FieldSpec, Schema
from funnelrec.encoders import Scaler, Vocab
from funnelrec.errors import DataError

CRITEO_INT = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CAT = tuple(f"C{i}" for i in range(1, 27))
AVAZU_COLUMNS = (
    "id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category",
    "app_id", "app_domain", "app_category", "device_id", "device_ip", "device_model",
    "device_type", "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)  # fmt: skip
PARTS = ("train", "dev", "test")


@dataclass(frozen=True)
class CTRTable:
    """Train/dev/test frames of a tabular CTR dataset (all columns strings but ``label``)."""

    name: str
    parts: dict[str, pl.DataFrame]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...] = ()

    def encode(self, min_count: int = 2) -> tuple[Schema, dict[str, Batch]]:
        """Fit the preprocessing on train; ``(schema, {part: batch})``."""
        train = self.parts["train"]
        vocabs = [Vocab.fit(train[c].to_list(), min_count) for c in self.categorical]
        scalers = [Scaler.fit(_floats(train[c]), log=True) for c in self.numeric]
        batches = {}
        for part, frame in self.parts.items():
            cols = zip(vocabs, self.categorical, strict=True)
            sparse = np.stack([v.encode(frame[c].to_list()) for v, c in cols], axis=1)
            dense = np.zeros((frame.height, len(self.numeric)), dtype=np.float32)
            for j, (s, c) in enumerate(zip(scalers, self.numeric, strict=True)):
                dense[:, j] = s.encode(_floats(frame[c]))
            batches[part] = Batch.from_numpy(sparse, dense, label=frame["label"].to_numpy())
        schema = Schema(
            sparse=tuple(
                FieldSpec(c, v.size, "table") for c, v in zip(self.categorical, vocabs, strict=True)
            ),
            dense=tuple(FieldSpec(c, 1, "table") for c in self.numeric),
        )
        return schema, batches


def load_criteo_sample(folder: str | Path) -> CTRTable:
    """criteo-sample: ``{train,dev,test}.txt``, TAB separated, no header:
    ``label, I1..I13, C1..C26``."""
    root = Path(folder)
    names = ["label", *CRITEO_INT, *CRITEO_CAT]
    parts = {p: _read(root / f"{p}.txt", "\t", names, header=False) for p in PARTS}
    return CTRTable("criteo-sample", parts, CRITEO_CAT, CRITEO_INT)


def load_avazu_sample(folder: str | Path) -> CTRTable:
    """avazu-sample: ``{train,dev,test}.csv``, comma separated; only train has a header.
    Fields: every column but ``id`` and ``click`` (the label), all categorical."""
    root = Path(folder)
    parts = {
        p: _read(root / f"{p}.csv", ",", list(AVAZU_COLUMNS), header=p == "train").rename(
            {"click": "label"}
        )
        for p in PARTS
    }
    return CTRTable("avazu-sample", parts, AVAZU_COLUMNS[2:])


def _read(path: Path, sep: str, names: list[str], header: bool) -> pl.DataFrame:
    """All columns as strings (empty → null) but an integer ``label`` (0/1)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    frame = pl.read_csv(
        path,
        separator=sep,
        has_header=header,
        new_columns=names,
        infer_schema=False,
        quote_char=None,
    )
    if frame.width != len(names):
        raise DataError(f"{path}: expected {len(names)} columns, found {frame.width}")
    label_col = "label" if "label" in names else "click"
    labels = frame[label_col].cast(pl.Int8, strict=False)
    bad = labels.is_null() | ~labels.is_in([0, 1])
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 1 + header
        raise DataError(f"{path}: line {line}: label must be 0 or 1")
    return frame.with_columns(labels.alias(label_col))


def _floats(series: pl.Series) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    return series.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
