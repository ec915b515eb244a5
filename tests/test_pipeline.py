"""Funnel: fit/recommend/trace/save/load, cold start, atomic save."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.errors import NotFittedError
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.provenance import channel_sets
from funnelrec.rank.passthrough import PassthroughRanker
from funnelrec.types import Candidates, Query

CONFIG = {
    "k": 5,
    "recall": {
        "total": 60,
        "channels": [
            {"name": "popular", "alias": "recent", "share": 0.5, "params": {"half_life_days": 7}},
            {"name": "popular", "share": 0.5},
        ],
    },
    "prerank": {"keep": 40},
    "rank": {"keep": 20},
}


@pytest.fixture(scope="module")
def funnel(world_split: Split) -> Funnel:
    return Funnel(parse_config(CONFIG)).fit(world_split.history)


def test_recommend_shapes_and_exclusions(funnel: Funnel, world_split: Split) -> None:
    users = world_split.test_users()[:30]
    query = world_split.test_query(users, 5)
    trace = funnel.run(query)
    assert trace.slate is not None
    assert np.all(trace.slate.lengths() == 5)
    seen = world_split.history.user_item
    for row, u in enumerate(users):
        assert not set(trace.slate.row(row)[0]) & set(seen[u].indices)
    assert set(trace.channels) == {"recent", "popular"}
    assert np.all(trace.merged.lengths() <= 60)
    assert np.all(trace.prerank.lengths() <= 40) and np.all(trace.rank.lengths() <= 20)


def test_trace_explains_provenance(funnel: Funnel, world_split: Split) -> None:
    query = world_split.test_query(world_split.test_users()[:1], 5)
    info = funnel.run(query).explain(0, world_split.train.item_ids)
    assert set(info) == {"channels", "merged", "prerank", "rank", "rerank", "slate"}
    assert len(info["slate"]) == 5
    assert all(entry["found_by"] for entry in info["merged"])
    assert info["rerank"][0]["reranker"] == "seen_filter"


def test_cold_user_gets_popular(funnel: Funnel) -> None:
    slate = funnel.recommend(funnel.query_for(["nobody-knows-me"], 5))
    assert slate.lengths().tolist() == [5]


def test_unfitted_funnel_raises() -> None:
    with pytest.raises(NotFittedError):
        Funnel(parse_config(CONFIG)).query_for(["x"])


def test_save_load_same_output(funnel: Funnel, world_split: Split, tmp_path: Path) -> None:
    funnel.save(tmp_path / "art")
    loaded = Funnel.load(tmp_path / "art")
    assert loaded.config == funnel.config
    query = world_split.test_query(world_split.test_users()[:20], 5)
    np.testing.assert_array_equal(
        loaded.recommend(query).item_idx, funnel.recommend(query).item_idx
    )


def test_failed_save_leaves_previous_artifact(
    funnel: Funnel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "art"
    funnel.save(target)
    before = sorted(p.name for p in target.rglob("*"))

    def boom(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(funnel.ranker, "save", boom)
    with pytest.raises(RuntimeError):
        funnel.save(target)
    assert sorted(p.name for p in target.rglob("*")) == before
    left = [p.name for p in tmp_path.iterdir() if not p.name.startswith(".art.v")]
    assert left == ["art"]  # the link; its version stays, the failed save left no folder


def test_funnel_evaluation_stage_recall_is_monotone(funnel: Funnel, world_split: Split) -> None:
    report = evaluate_funnel(funnel, world_split, ks=(5,))
    by_stage = {r.stage: r.test_recall for r in report.stages}
    assert by_stage["recall"] >= by_stage["prerank"] >= by_stage["rank"] >= by_stage["rerank"]
    assert by_stage["recall"] >= max(by_stage["recall:recent"], by_stage["recall:popular"]) - 1e-9
    assert report.metrics["hit@5"] > 0


EVIDENCE_CONFIG = {
    "k": 5,
    "recall": {
        "total": 60,
        "channels": [
            {"name": "itemcf", "share": 0.5},
            {"name": "usercf", "share": 0.3},
            {"name": "popular", "share": 0.2},
        ],
    },
    "prerank": {"keep": 40},
    "rank": {"keep": 20},
    "rerank": [
        {"name": "seen_filter"},
        {"name": "scatter", "params": {"window": 4, "max_per_window": 2}},
    ],
}


class _EvidenceReader(PassthroughRanker):
    """A ranker that reads the channels' evidence and remembers what it saw."""

    reads_channel_evidence: ClassVar[bool] = True

    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        self.seen_ = sorted(candidates.stage_scores)
        return super()._score(query, candidates)


@pytest.fixture(scope="module")
def evidence_funnel(world_split: Split) -> Funnel:
    return Funnel(parse_config(EVIDENCE_CONFIG)).fit(world_split.history)


def test_run_without_evidence_gives_the_same_slate(
    evidence_funnel: Funnel, world_split: Split
) -> None:
    assert not evidence_funnel.reads_channel_evidence  # passthrough scorers, rule re-rankers
    query = world_split.test_query(world_split.test_users()[:40], 5)
    full, light = evidence_funnel.run(query), evidence_funnel.run(query, evidence=False)
    assert full.slate is not None and light.slate is not None
    np.testing.assert_array_equal(full.slate.offsets, light.slate.offsets)
    np.testing.assert_array_equal(full.slate.item_idx, light.slate.item_idx)
    np.testing.assert_array_equal(full.slate.scores, light.slate.scores)
    assert channel_sets(full.slate) == channel_sets(light.slate)
    assert {"ch:itemcf", "cs:usercf"} <= set(full.merged.stage_scores)
    assert not [k for k in light.merged.stage_scores if ":" in k]  # evidence skipped


def test_a_stage_that_reads_evidence_always_gets_it(
    evidence_funnel: Funnel, world_split: Split
) -> None:
    reader = _EvidenceReader().fit(world_split.history)
    funnel = copy.copy(evidence_funnel)
    funnel.ranker = reader
    assert funnel.reads_channel_evidence
    funnel.run(world_split.test_query(world_split.test_users()[:5], 5), evidence=False)
    assert {"ch:itemcf", "ch:usercf", "cs:itemcf"} <= set(reader.seen_)
