"""Every registered re-ranker honours the Reranker contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.errors import NotFittedError
from funnelrec.recall.itemcf import ItemCFRecall
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import RERANK
from funnelrec.types import Candidates, Query
from tests.contracts.conftest import (
    BATCH_NAMES,
    assert_scorer_invariant,
    disturb_global_rngs,
    seeded_names,
)

NAMES = RERANK.names()


def make(name: str) -> Any:
    return RERANK.create(name, getattr(RERANK.get(name), "example_params", {}))


@pytest.fixture(scope="module")
def inputs(world_split: Split) -> tuple[Query, Candidates]:
    recall = PopularRecall().fit(world_split.train)
    query = world_split.test_query(world_split.test_users()[:40], 10)
    no_excl = Query.from_lists(query.user_idx.tolist(), [[] for _ in range(40)], k=10)
    return query, recall.retrieve(no_excl, 60)


@pytest.mark.parametrize("name", NAMES)
def test_slate_wellformed(
    name: str, world_split: Split, inputs: tuple[Query, Candidates], tmp_path: Path
) -> None:
    query, cands = inputs
    reranker = make(name).fit(world_split.train)
    for k in (1, 10, 500):
        slate = reranker.rerank(query, cands, k)
        assert slate.batch_size == query.batch_size
        assert np.all(slate.lengths() <= k)
        assert ragged.unique_within_rows(slate.offsets, slate.item_idx).all()
        inserted = slate.reasons is not None
        if not inserted:
            assert ragged.membership(
                slate.offsets, slate.item_idx, cands.offsets, cands.item_idx
            ).all(), "re-ranker invented items"
    reranker.save(tmp_path / name)
    again = RERANK.load(tmp_path / name).rerank(query, cands, 10)
    np.testing.assert_array_equal(again.item_idx, reranker.rerank(query, cands, 10).item_idx)


@pytest.mark.parametrize("name", seeded_names(RERANK))
def test_fit_depends_on_its_seed_only(
    name: str, fitted: dict[str, Any], world_split: Split, inputs: tuple[Query, Candidates]
) -> None:
    query, cands = inputs
    disturb_global_rngs()
    again = make(name).fit(world_split.train).rerank(query, cands, 10)
    first = fitted[name].rerank(query, cands, 10)
    np.testing.assert_array_equal(again.item_idx, first.item_idx)
    np.testing.assert_array_equal(again.scores, first.scores)


@pytest.mark.parametrize("name", NAMES)
def test_use_before_fit_raises(name: str, inputs: tuple[Query, Candidates]) -> None:
    query, cands = inputs
    with pytest.raises(NotFittedError):
        make(name).rerank(query, cands, 5)


@pytest.fixture(scope="module")
def fitted(world_split: Split) -> dict[str, Any]:
    return {name: make(name).fit(world_split.train) for name in NAMES}


@pytest.fixture(scope="module")
def ranked(world_split: Split, batches: dict[str, Query]) -> dict[str, Candidates]:
    """Per batch: merged item-CF + popular candidates (item-CF is empty for cold users)."""
    itemcf = ItemCFRecall().fit(world_split.train)
    popular = PopularRecall().fit(world_split.train)
    out = {}
    for name, q in batches.items():
        parts = [("itemcf", itemcf.retrieve(q, 40)), ("popular", popular.retrieve(q, 40))]
        out[name] = merge([ChannelResult(n, c, quota=30) for n, c in parts], total=50)
    return out


@pytest.mark.parametrize("batch", BATCH_NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_batch_invariance(
    name: str,
    batch: str,
    fitted: dict[str, Any],
    ranked: dict[str, Candidates],
    batches: dict[str, Query],
) -> None:
    reranker = fitted[name]
    assert_scorer_invariant(
        lambda q, c: reranker.rerank(q, c, 10), batches[batch], ranked[batch], f"{name}/{batch}"
    )
