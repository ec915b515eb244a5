"""Protocols: loo (stable ties), rs811 ratios, temporal cut."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import split
from funnelrec.errors import ConfigError


def tiny() -> Dataset:
    # user a: 4 events, two share the latest timestamp -> file order breaks the tie
    frame = pl.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "b", "c"],
            "item_id": [1, 2, 3, 4, 1, 5, 9],
            "timestamp": [1, 5, 5, 2, 1, 2, 1],
        }
    )
    return Dataset.from_frame(frame)


def items_of(ds: Dataset, user: str) -> list[object]:
    u = ds.user_ids.index(user)
    a = ds.arrays
    return ds.item_ids.external(a.item_idx[a.user_idx == u])


def test_loo_stable_ties() -> None:
    s = split(tiny(), "loo", min_len=2)
    assert items_of(s.test, "a") == [3]  # (ts 5, later in file)
    assert items_of(s.valid, "a") == [2]
    assert sorted(items_of(s.train, "a")) == [1, 4]  # type: ignore[type-var]
    assert items_of(s.test, "b") == [5] and items_of(s.valid, "b") == []
    assert items_of(s.train, "c") == [9] and items_of(s.test, "c") == []


def test_loo_min_len_default_keeps_short_users_in_train() -> None:
    s = split(tiny(), "loo")  # min_len = 3 (RecBole, SASRec): "b" has 2 events
    assert items_of(s.test, "a") == [3] and items_of(s.valid, "a") == [2]
    assert items_of(s.test, "b") == [] and items_of(s.valid, "b") == []
    assert sorted(items_of(s.train, "b")) == [1, 5]  # type: ignore[type-var]
    strict = split(tiny(), "loo", min_len=5)  # "a" has 4 events: all in train now
    assert items_of(strict.test, "a") == [] and len(items_of(strict.train, "a")) == 4


def test_loo_min_len_rejects_zero() -> None:
    with pytest.raises(ConfigError, match="min_len"):
        split(tiny(), "loo", min_len=0)


def test_rs811_ratios(world: Dataset) -> None:
    s = split(world, "rs811", seed=1)
    assert len(s.train) + len(s.valid) + len(s.test) == len(world)
    n = np.bincount(world.arrays.user_idx)
    n_test = np.bincount(s.test.arrays.user_idx, minlength=len(n))
    assert np.array_equal(n_test, np.floor(0.1 * n).astype(int))
    again = split(world, "rs811", seed=1)
    assert again.test.interactions.equals(s.test.interactions)


def test_temporal_cut(world: Dataset) -> None:
    s = split(world, "temporal")
    assert s.train.arrays.timestamp.max() <= s.valid.arrays.timestamp.min()
    assert s.valid.arrays.timestamp.max() <= s.test.arrays.timestamp.min()
    assert abs(len(s.test) / len(world) - 0.2) < 0.05


def test_test_query_excludes_history() -> None:
    s = split(tiny(), "loo")
    a = s.train.user_ids.index("a")
    q = s.test_query(np.array([a]), 3)
    assert sorted(s.train.item_ids.external(q.exclude_items)) == [1, 2, 4]  # type: ignore[type-var]


def test_unknown_protocol() -> None:
    with pytest.raises(ConfigError, match="unknown protocol 'xyz'"):
        split(tiny(), "xyz")


def test_impressions_follow_their_part(world: Dataset) -> None:
    s = split(world, "loo")
    assert s.train.impressions is not None and s.test.impressions is not None
    test_keys = set(
        zip(s.test.arrays.user_idx.tolist(), s.test.arrays.timestamp.tolist(), strict=True)
    )
    train_imp = s.train.impressions
    leaked = sum(
        (u, t) in test_keys
        for u, t in zip(
            train_imp["user_idx"].to_list(), train_imp["timestamp"].to_list(), strict=True
        )
    )
    assert leaked == 0
    assert s.test.impressions.height > 0
