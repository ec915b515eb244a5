"""Repeat recall: frequency and recency of the user's own items (known answers)."""

from __future__ import annotations

import numpy as np
import polars as pl

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.registry import RECALL
from funnelrec.types import Query


def query(histories: list[list[int]]) -> Query:
    return Query.from_lists(list(range(len(histories))), histories, k=5)


def test_scores_frequency_and_recency() -> None:
    ch = RECALL.create("repeat", {"half_life_events": 1.0})
    ch.n_items_ = 10  # fitted state without data
    c = ch.retrieve(query([[1, 2, 1, 3], []]).without_exclusions(), 5)
    items, scores = c.row(0)
    # weights 0.5**newer: 1 -> 0.125 + 0.5, 2 -> 0.25, 3 -> 1
    assert items.tolist() == [3, 1, 2]
    np.testing.assert_allclose(scores, [1.0, 0.625, 0.25], rtol=1e-6)
    assert c.lengths()[1] == 0  # no history, nothing to repeat


def test_frequency_only_and_min_count() -> None:
    ch = RECALL.create("repeat", {"half_life_events": None, "min_count": 2})
    ch.n_items_ = 10
    items, scores = ch.retrieve(query([[4, 5, 4, 6, 5, 4]]).without_exclusions(), 5).row(0)
    assert items.tolist() == [4, 5] and scores.tolist() == [3.0, 2.0]


def test_funnel_exclude_seen_false_recommends_repeats() -> None:
    rng = np.random.default_rng(0)  # every user cycles over 3 favourite items
    users = np.repeat(np.arange(50), 30)
    items = (users * 3 + rng.integers(0, 3, len(users))) % 40
    frame = pl.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(len(users))})
    parts = split(Dataset.from_frame(frame), "loo")
    rerank: list[dict[str, str]] = []
    repeat = {"exclude_seen": False, "recall": {"channels": [{"name": "repeat"}]}}
    funnel = Funnel(parse_config({**repeat, "rerank": rerank})).fit(parts.train)
    hit = evaluate_funnel(funnel, parts, consistency_k=None).metrics["hit@10"]
    assert hit == 1.0  # the test item is always one of the user's 3 items
    seen = {"recall": {"channels": [{"name": "repeat"}, {"name": "popular"}]}}
    funnel = Funnel(parse_config(seen)).fit(parts.train)  # default: seen items excluded
    assert evaluate_funnel(funnel, parts, consistency_k=None).metrics["hit@10"] < 0.5
