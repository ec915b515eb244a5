"""Helpers for re-ranker tests: tiny hand-made catalogues and candidate batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
import pytest

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.types import Candidates

ToyDataset = Callable[..., Dataset]


def toy_dataset(
    n_items: int, popularity: Sequence[int] | None = None, **columns: Sequence[Any]
) -> Dataset:
    """A catalogue of items ``0..n_items-1`` (dense index == external id) with the given
    item columns; one user interacts ``popularity[i]`` times (default once) with item ``i``."""
    counts = np.ones(n_items, dtype=np.int64) if popularity is None else np.asarray(popularity)
    item_ids = np.repeat(np.arange(n_items), counts)
    frame = pl.DataFrame(
        {
            "user_id": np.zeros(len(item_ids), dtype=np.int64),
            "item_id": item_ids,
            "timestamp": np.zeros(len(item_ids)),
        }
    )
    items = pl.DataFrame(
        {"item_id": np.arange(n_items), **{k: list(v) for k, v in columns.items()}}
    )
    return Dataset.from_frame(frame, items=items)


def candidates(
    rows: Sequence[Sequence[int]], scores: Sequence[Sequence[float]] | None = None
) -> Candidates:
    """Candidates with the given rows; scores default to descending ``-position``."""
    offsets, items = ragged.from_lists([list(r) for r in rows])
    if scores is None:
        flat = -ragged.position_in_row(offsets).astype(np.float32)
    else:
        flat = np.asarray([s for row in scores for s in row], dtype=np.float32)
    return Candidates.from_flat(offsets, items, flat, "test")


MakeCandidates = Callable[..., Candidates]


@pytest.fixture(scope="session")
def make_dataset() -> ToyDataset:
    """Factory ``toy_dataset`` (session-scoped, so ``hypothesis`` tests can use it)."""
    return toy_dataset


@pytest.fixture(scope="session")
def make_candidates() -> MakeCandidates:
    """Factory ``candidates``."""
    return candidates
