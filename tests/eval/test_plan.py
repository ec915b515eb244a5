"""One evaluation plan: ``evaluate`` and ``evaluate_funnel`` average over the same users,
report warm and cold users as separate rows, and build the test history once."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.eval.protocol import EvalPlan, evaluate
from funnelrec.pipeline import Funnel

CONFIG = {
    "k": 10,
    "recall": {
        "total": 40,
        "channels": [{"name": "itemcf", "share": 0.5}, {"name": "popular", "share": 0.5}],
    },
    "prerank": {"keep": 30},
    "rank": {"keep": 20},
}


@pytest.fixture(scope="module")
def temporal(world: Dataset) -> Split:
    """The world's temporal split, with 30 users who only arrive after the cut (cold)."""
    frame = world.interactions
    late = pl.col("user_idx") < 30
    shift = float(world.arrays.timestamp.max()) + 1.0
    return split(
        world.with_interactions(
            frame.with_columns(
                pl.when(late)
                .then(pl.col("timestamp") + shift)
                .otherwise(pl.col("timestamp"))
                .cast(frame.schema["timestamp"])
                .alias("timestamp")
            )
        ),
        "temporal",
    )


@pytest.fixture(scope="module")
def funnel(temporal: Split) -> Funnel:
    return Funnel(parse_config(CONFIG)).fit(temporal.train)


def test_plan_splits_warm_and_cold(temporal: Split) -> None:
    plan = EvalPlan.build(temporal, "test")
    np.testing.assert_array_equal(plan.users, temporal.test_users())
    history_len = np.diff(temporal.history.user_item.indptr)[plan.users]
    np.testing.assert_array_equal(plan.warm, history_len > 0)
    seg = plan.segments()
    assert set(seg) == {"warm", "cold"}, "the temporal split of the world has cold users"
    assert len(seg["warm"]) + len(seg["cold"]) == len(plan.users)


def test_both_evaluators_use_the_same_users_and_rows(temporal: Split, funnel: Funnel) -> None:
    plain = evaluate(funnel.recommend, temporal, ks=(10,))
    report = evaluate_funnel(funnel, temporal, ks=(10,), consistency_k=None)
    assert plain.n_users == report.n_users == len(temporal.test_users())
    assert plain.metrics["ndcg@10"] == pytest.approx(report.metrics["ndcg@10"], abs=1e-9)
    for result in (plain.segments, report.segments):
        assert set(result) == {"warm", "cold"}
        n = sum(s.n_users for s in result.values())
        assert n == plain.n_users
        mean = sum(s.n_users * s.metrics["ndcg@10"] for s in result.values()) / n
        assert mean == pytest.approx(plain.metrics["ndcg@10"], abs=1e-9)
    assert plain.segments["cold"].metrics == pytest.approx(report.segments["cold"].metrics)
    assert report.cold_metrics == report.segments["cold"].metrics
    assert report.n_cold_users == report.segments["cold"].n_users


def test_history_is_built_once(
    world: Dataset, funnel: Funnel, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = split(world, "loo")
    calls = []
    original = Dataset.with_interactions

    def counting(self: Dataset, frame: object) -> Dataset:
        calls.append(1)
        return original(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(Dataset, "with_interactions", counting)
    evaluate(funnel.recommend, parts, ks=(10,), batch_size=50)
    evaluate_funnel(funnel, parts, ks=(10,), batch_size=50, consistency_k=None)
    assert len(calls) <= 1, f"the test history was rebuilt {len(calls)} times"
