"""Protocols: loo (stable ties), rs811 ratios, temporal cut."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import rs811_counts, split
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
    assert np.array_equal(n_test, rs811_counts(n)[2])
    assert np.all(n_test[n >= 10] == np.floor(0.1 * n[n >= 10]))
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


def test_rs811_matches_recbole_rounding_for_short_users() -> None:
    """RecBole >= 1.0 ``_calcu_split_ids`` gives short users one valid and one test row."""
    lengths = [*range(1, 13), 19, 20, 29]
    expected = {  # n: (train, valid, test), worked out by hand from RecBole's rule
        1: (1, 0, 0),
        2: (1, 0, 1),
        3: (1, 1, 1),
        4: (2, 1, 1),
        5: (3, 1, 1),
        6: (4, 1, 1),
        7: (5, 1, 1),
        8: (6, 1, 1),
        9: (7, 1, 1),
        10: (8, 1, 1),
        11: (9, 1, 1),
        12: (10, 1, 1),
        19: (17, 1, 1),
        20: (16, 2, 2),
        29: (25, 2, 2),
    }
    frame = pl.DataFrame(
        {
            "user_id": [f"u{n:02d}" for n in lengths for _ in range(n)],
            "item_id": [i for n in lengths for i in range(n)],
            "timestamp": [i for n in lengths for i in range(n)],
        }
    )
    ds = Dataset.from_frame(frame)
    s = split(ds, "rs811", seed=3)
    for n in lengths:
        got = tuple(len(items_of(p, f"u{n:02d}")) for p in (s.train, s.valid, s.test))
        assert got == expected[n], f"user with {n} interactions"
        parts = [set(items_of(p, f"u{n:02d}")) for p in (s.train, s.valid, s.test)]
        assert set.union(*parts) == set(range(n))  # a partition of the user's items
