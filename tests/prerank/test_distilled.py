"""The ``distilled`` pre-ranker: fitted after the ranker, it keeps what the ranker ranks top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.errors import ConfigError
from funnelrec.eval.funnel import FunnelReport, evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.prerank.distilled import kept_share
from funnelrec.registry import PRERANK

RECALL = {
    "total": 60,
    "channels": [
        {"name": "itemcf", "share": 0.6, "weight": 2.0},
        {"name": "popular", "share": 0.4},
    ],
}
RANK = {"name": "lambdamart", "keep": 15, "params": {"n_estimators": 20, "min_data_in_leaf": 5}}
DISTILLED = {"top": 15, "keep": 30, "min_data_in_leaf": 5}


def _config(prerank: dict[str, Any]) -> dict[str, Any]:
    return {"k": 10, "fit": {"folds": 2, "max_neg": 20}, "recall": RECALL,
            "prerank": {"keep": 30, **prerank}, "rank": RANK}  # fmt: skip


@pytest.fixture(scope="module")
def fitted(world_split: Split) -> dict[str, tuple[Funnel, FunnelReport]]:
    out = {}
    for name, prerank in (
        ("passthrough", {"name": "passthrough"}),
        ("distilled", {"name": "distilled", "params": DISTILLED}),
    ):
        funnel = Funnel(parse_config(_config(prerank))).fit(world_split.train, world_split.valid)
        out[name] = funnel, evaluate_funnel(funnel, world_split, consistency_k=15)
    return out


def test_distilled_keeps_what_the_ranker_ranks_top(
    fitted: dict[str, tuple[Funnel, FunnelReport]],
) -> None:
    funnel, report = fitted["distilled"]
    base = fitted["passthrough"][1]
    log = funnel.preranker.fit_log_
    assert log["teacher"] == "lambdamart"  # the ranker was fitted first and handed over
    assert log["valid_consistency"] > 0.9
    # measured: 0.963 (distilled) vs 0.772 (recall order cut to the same 30)
    assert report.metrics["consistency@15"] > 0.93
    assert report.metrics["consistency@15"] > base.metrics["consistency@15"] + 0.1
    assert report.metrics["ndcg@10"] >= base.metrics["ndcg@10"] - 0.005


def test_saved_and_loaded_with_the_funnel(
    fitted: dict[str, tuple[Funnel, FunnelReport]], world_split: Split, tmp_path: Path
) -> None:
    funnel = fitted["distilled"][0]
    query = world_split.test_query(world_split.test_users()[:30], 10)
    funnel.save(tmp_path / "f")
    again = Funnel.load(tmp_path / "f")
    assert type(again.preranker).__name__ == "DistilledPreranker"
    before, after = funnel.run(query).prerank, again.run(query).prerank
    np.testing.assert_array_equal(before.item_idx, after.item_idx)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-6)


def test_lambdarank_objective_fits(world_split: Split) -> None:
    params = {**DISTILLED, "objective": "lambdarank", "grade_at": [1, 5]}
    funnel = Funnel(parse_config(_config({"name": "distilled", "params": params})))
    funnel.fit(world_split.train, world_split.valid)
    assert funnel.preranker.fit_log_["valid_consistency"] > 0.9


def test_kept_share_known_answer() -> None:
    offsets = np.array([0, 3, 5])
    scores = np.array([0.1, 0.9, 0.5, 2.0, 1.0], dtype=np.float32)
    relevant = np.array([True, True, False, False, True])
    # keep=1: row 0 keeps item 1 (relevant), row 1 keeps item 3 (relevant item 4 lost)
    assert kept_share(offsets, scores, relevant, keep=1) == pytest.approx(1 / 3)
    # keep=2: row 0 keeps items 1 and 2 (relevant item 0 lost), row 1 keeps both
    assert kept_share(offsets, scores, relevant, keep=2) == pytest.approx(2 / 3)
    assert kept_share(offsets, scores, relevant, keep=3) == 1.0


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"grade_at": [5, 1]}, "grade_at"),
        ({"top": 60, "keep": 50}, "keep"),
        ({"objective": "xendcg"}, "objective"),
        ({"trees": 3}, "trees"),
    ],
)
def test_bad_params_are_rejected_in_one_line(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        PRERANK.create("distilled", params)
    assert "\n" not in str(err.value)
