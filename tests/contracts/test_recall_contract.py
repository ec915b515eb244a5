"""Every registered recall channel honours the RecallChannel contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.errors import NotFittedError
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query
from tests.contracts.conftest import (
    BATCH_NAMES,
    assert_batch_invariant,
    disturb_global_rngs,
    seeded_names,
)

NAMES = RECALL.names()


def make(name: str) -> RecallChannel[Any]:
    cls = RECALL.get(name)
    return RECALL.create(name, getattr(cls, "example_params", {}))


@pytest.fixture(scope="module")
def fitted(world_split: Split) -> dict[str, RecallChannel[Any]]:
    return {name: make(name).fit(world_split.train) for name in NAMES}


@pytest.fixture(scope="module")
def query(world_split: Split) -> Query:
    users = world_split.test_users()[:50]
    return world_split.test_query(users, 10)


def check_wellformed(c: Candidates, q: Query, k: int, n_items: int) -> None:
    assert c.batch_size == q.batch_size
    assert np.all(c.lengths() <= k)
    assert np.all((c.item_idx >= 0) & (c.item_idx < n_items))
    assert np.all(np.isfinite(c.scores))
    # sorted descending within rows
    same_row = np.diff(c.row_ids()) == 0
    assert np.all(np.diff(c.scores)[same_row] <= 1e-6)
    assert ragged.unique_within_rows(c.offsets, c.item_idx).all(), "duplicate items in a row"
    banned = ragged.membership(c.offsets, c.item_idx, q.exclude_offsets, q.exclude_items)
    assert not banned.any(), "excluded items returned"


@pytest.mark.parametrize("name", NAMES)
def test_shapes_order_exclusions(
    name: str, fitted: dict[str, Any], query: Query, world_split: Split
) -> None:
    c = fitted[name].retrieve(query, 20)
    check_wellformed(c, query, 20, world_split.train.n_items)
    if name == "repeat":  # only seen items, all excluded here: rerun without exclusions
        c = fitted[name].retrieve(query.without_exclusions(), 20)
        check_wellformed(c, query.without_exclusions(), 20, world_split.train.n_items)
    assert c.lengths().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_k_larger_than_catalogue(
    name: str, fitted: dict[str, Any], query: Query, world_split: Split
) -> None:
    n_items = world_split.train.n_items
    c = fitted[name].retrieve(query, n_items * 3)
    check_wellformed(c, query, n_items, n_items)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user_falls_back(name: str, fitted: dict[str, Any], world_split: Split) -> None:
    channel = fitted[name]
    q = Query.from_lists([-1, -1], [[], []], k=10, exclude=[[], [0, 1, 2]])
    c = channel.retrieve(q, 10)
    check_wellformed(c, q, 10, world_split.train.n_items)
    if not channel.personalized:
        assert np.all(c.lengths() == 10), "non-personalised channels must serve cold users"


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(
    name: str, fitted: dict[str, Any], query: Query, tmp_path: Path
) -> None:
    channel = fitted[name]
    channel.save(tmp_path / name)
    loaded = RECALL.load(tmp_path / name)
    a, b = channel.retrieve(query, 15), loaded.retrieve(query, 15)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.item_idx, b.item_idx)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


@pytest.mark.parametrize("name", seeded_names(RECALL))
def test_fit_depends_on_its_seed_only(
    name: str, fitted: dict[str, RecallChannel[Any]], world_split: Split, query: Query
) -> None:
    disturb_global_rngs()
    again = make(name).fit(world_split.train).retrieve(query, 20)
    first = fitted[name].retrieve(query, 20)
    np.testing.assert_array_equal(again.item_idx, first.item_idx)
    np.testing.assert_array_equal(again.scores, first.scores)


@pytest.mark.parametrize("name", NAMES)
def test_use_before_fit_raises(name: str, query: Query) -> None:
    with pytest.raises(NotFittedError):
        make(name).retrieve(query, 5)


@pytest.mark.parametrize("batch", BATCH_NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_batch_invariance(
    name: str, batch: str, fitted: dict[str, Any], batches: dict[str, Query]
) -> None:
    channel = fitted[name]
    assert_batch_invariant(lambda q: channel.retrieve(q, 30), batches[batch], f"{name}/{batch}")
