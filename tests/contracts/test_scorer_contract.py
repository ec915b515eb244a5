"""Every registered pre-ranker and ranker honours the Scorer contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelrec.context import FitContext
from funnelrec.data.splits import Split
from funnelrec.errors import NotFittedError
from funnelrec.recall.itemcf import ItemCFRecall
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import PRERANK, RANK, Registry
from funnelrec.types import Candidates, Query
from tests.contracts.conftest import (
    BATCH_NAMES,
    assert_scorer_invariant,
    disturb_global_rngs,
    seeded_names,
)

CASES = [(reg, name) for reg in (PRERANK, RANK) for name in reg.names()]
IDS = [f"{reg.kind}:{name}" for reg, name in CASES]
SEEDED = [i for i, (reg, name) in zip(IDS, CASES, strict=True) if name in seeded_names(reg)]


def make(reg: Registry[Any], name: str) -> Any:
    return reg.create(name, getattr(reg.get(name), "example_params", {}))


@pytest.fixture(scope="module")
def inputs(world_split: Split) -> tuple[Query, Candidates, Any]:
    recall = PopularRecall().fit(world_split.train)
    query = world_split.test_query(world_split.test_users()[:40], 10)
    return query, recall.retrieve(query, 50), lambda q: recall.retrieve(q, 50)


@pytest.mark.parametrize(("reg", "name"), CASES, ids=IDS)
def test_scores_same_items_sorted(
    reg: Registry[Any],
    name: str,
    world_split: Split,
    inputs: tuple[Query, Candidates, Any],
    tmp_path: Path,
) -> None:
    query, cands, retrieve = inputs
    scorer = make(reg, name).fit(world_split.train, FitContext(retrieve=retrieve))
    out = scorer.score(query, cands)
    assert out.batch_size == cands.batch_size
    np.testing.assert_array_equal(out.lengths(), cands.lengths())
    for b in range(cands.batch_size):
        assert sorted(out.row(b)[0].tolist()) == sorted(cands.row(b)[0].tolist())
    same_row = np.diff(out.row_ids()) == 0
    assert np.all(np.diff(out.scores)[same_row] <= 1e-6)
    scorer.save(tmp_path / name)
    again = reg.load(tmp_path / name).score(query, cands)
    np.testing.assert_array_equal(again.item_idx, out.item_idx)


@pytest.mark.parametrize(("reg", "name"), CASES, ids=IDS)
def test_use_before_fit_raises(
    reg: Registry[Any], name: str, inputs: tuple[Query, Candidates, Any]
) -> None:
    query, cands, _ = inputs
    with pytest.raises(NotFittedError):
        make(reg, name).score(query, cands)


@pytest.fixture(scope="module")
def merged_recall(world_split: Split) -> Any:
    """Recall as the funnel feeds scorers: item-CF and popular merged with provenance
    (item-CF returns nothing for users without history)."""
    itemcf = ItemCFRecall().fit(world_split.train)
    popular = PopularRecall().fit(world_split.train)

    def retrieve(q: Query) -> Candidates:
        parts = [("itemcf", itemcf.retrieve(q, 30)), ("popular", popular.retrieve(q, 30))]
        return merge([ChannelResult(n, c, quota=20) for n, c in parts], total=40)

    return retrieve


@pytest.fixture(scope="module")
def fitted_on_recall(world_split: Split, merged_recall: Any) -> dict[str, Any]:
    return {
        i: make(reg, name).fit(world_split.train, FitContext(retrieve=merged_recall))
        for i, (reg, name) in zip(IDS, CASES, strict=True)
    }


@pytest.mark.parametrize("batch", BATCH_NAMES)
@pytest.mark.parametrize("case", IDS)
def test_batch_invariance(
    case: str,
    batch: str,
    fitted_on_recall: dict[str, Any],
    merged_recall: Any,
    batches: dict[str, Query],
) -> None:
    query = batches[batch]
    scorer = fitted_on_recall[case]
    assert_scorer_invariant(scorer.score, query, merged_recall(query), f"{case}/{batch}")


@pytest.mark.parametrize("case", SEEDED)
def test_fit_depends_on_its_seed_only(
    case: str,
    fitted_on_recall: dict[str, Any],
    merged_recall: Any,
    world_split: Split,
    batches: dict[str, Query],
) -> None:
    reg, name = CASES[IDS.index(case)]
    query = batches["mixed"]
    cands = merged_recall(query)
    disturb_global_rngs()
    again = make(reg, name).fit(world_split.train, FitContext(retrieve=merged_recall))
    first = fitted_on_recall[case].score(query, cands)
    np.testing.assert_array_equal(again.score(query, cands).scores, first.scores)
