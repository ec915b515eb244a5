"""The ``ctr`` ranker with ``loss = "listwise"`` inside a funnel: whole lists, early stopping
on the funnel's validation lists (NDCG@10)."""

from __future__ import annotations

from typing import Any

import pytest

from funnelrec import stacking
from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.train.listwise import list_ndcg

RECALL = {
    "total": 60,
    "channels": [
        {"name": "itemcf", "share": 0.6, "weight": 2.0},
        {"name": "popular", "share": 0.4},
    ],
}
FAST = {"epochs": 5, "threads": 1, "dim": 8, "hidden": [32], "train_on": "recall",
        "batch_size": 512}  # fmt: skip


def _funnel(loss: str) -> Funnel:
    config: dict[str, Any] = {
        "k": 10, "fit": {"folds": 2, "max_neg": 20}, "recall": RECALL, "prerank": {"keep": 60},
        "rank": {"name": "ctr", "keep": 30, "params": {**FAST, "loss": loss}},
    }  # fmt: skip
    return Funnel(parse_config(config))


def test_listwise_ranker_early_stops_on_the_funnels_validation_lists(world_split: Split) -> None:
    funnel = _funnel("listwise").fit(world_split.train, world_split.valid)
    log = funnel.ranker.fit_log_
    valid = stacking.valid_examples(world_split.train, world_split.valid, funnel.recall)
    assert valid is not None
    logits = funnel.ranker.logits(valid.query, valid.candidates)
    want = list_ndcg(valid.labels, logits, valid.candidates.row_ids(), k=10)
    assert log["best_metric"] == pytest.approx(want, abs=1e-6)  # NDCG@10, not (G)AUC
    examples = stacking.oof_examples(
        world_split.train, funnel.config.recall, funnel.config.fit, funnel.config.seed, {}
    )
    assert log["n_examples"] == len(examples.labels)  # no training list held out


def test_listwise_ranker_is_at_least_as_good_as_pointwise(world_split: Split) -> None:
    ndcg = {
        loss: evaluate_funnel(
            _funnel(loss).fit(world_split.train, world_split.valid), world_split
        ).metrics["ndcg@10"]
        for loss in ("bce", "listwise")
    }
    assert ndcg["listwise"] >= ndcg["bce"]  # measured 0.1782 vs 0.1724
