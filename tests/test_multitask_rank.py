"""The ``multitask`` ranker / pre-ranker: task labels, config-wide tasks, fusion, funnel
consistency report."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.errors import ConfigError
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.rank.fusion import fuse
from funnelrec.rank.multitask import MultiTaskRanker, task_labels
from funnelrec.tasks import TaskDef
from funnelrec.train.examples import impression_examples

TASKS = [{"name": t, "column": t} for t in ("click", "like", "purchase")]
FAST = {"epochs": 1, "dim": 4, "bottom": [8], "expert_hidden": [8], "tower": [4],
        "experts": 2, "threads": 1, "max_queries": 2000}  # fmt: skip


def test_task_labels_follow_the_funnel(world: Dataset) -> None:
    ex = impression_examples(world, None, max_queries=10**9, seed=0)
    y = task_labels(world, ex, [TaskDef(name=t, column=t) for t in ("click", "like", "purchase")])
    np.testing.assert_array_equal(y[:, 0], ex.labels)
    assert (y[:, 1] <= y[:, 0]).all() and (y[:, 2] <= y[:, 1]).all()
    likes = world.interactions["like"].sum()
    assert 0 < y[:, 1].sum() <= likes  # every like is a clicked impression


def test_unknown_label_column_fails_naming_it(world_split: Split) -> None:
    bad = [*TASKS[:2], {"name": "purchase", "column": "purchsae"}]
    ranker = MultiTaskRanker(MultiTaskRanker.validate_params({**FAST, "tasks": bad}))
    with pytest.raises(ConfigError, match="'purchsae'"):
        ranker.fit(world_split.train)


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="unique"):
        MultiTaskRanker.validate_params({"tasks": [TASKS[0], TASKS[0]]})
    with pytest.raises(ConfigError, match="loss_weights has 2 values for 3 tasks"):
        MultiTaskRanker.validate_params({"loss_weights": [1, 1]})
    with pytest.raises(ConfigError, match="'mmmoe'"):
        MultiTaskRanker.validate_params({"arch": "mmmoe"})


def _config(**rank: Any) -> dict[str, Any]:
    return {
        "tasks": [{**TASKS[0], "weight": 1.0}, TASKS[1], {**TASKS[2], "weight": 3.0}],
        "recall": {"total": 60, "channels": [{"name": "itemcf"}, {"name": "popular"}]},
        "prerank": {"name": "multitask", "keep": 30, "params": FAST},
        "rank": {"name": "multitask", "keep": 10, "params": {**FAST, **rank}},
    }


def test_tasks_are_configured_once_for_both_stages() -> None:
    config = parse_config(_config())
    for slot in (config.prerank, config.rank):
        assert [t["name"] for t in slot.params["tasks"]] == ["click", "like", "purchase"]
        assert slot.params["tasks"][2]["weight"] == 3.0
    own = parse_config(_config(tasks=[TASKS[0]]))
    assert [t["name"] for t in own.rank.params["tasks"]] == ["click"]  # explicit wins
    plain = parse_config({**_config(), "rank": {"name": "passthrough"}})
    assert "tasks" not in plain.rank.params


def test_funnel_reports_what_earlier_stages_dropped(world_split: Split) -> None:
    funnel = Funnel(parse_config(_config())).fit(world_split.train)
    ranker = funnel.ranker
    assert isinstance(ranker, MultiTaskRanker)
    query = world_split.test_query(world_split.test_users()[:20], 10)
    cands = funnel.recall(query)
    per_task = ranker.task_logits(query, cands)
    assert per_task.shape == (len(cands), 3)
    np.testing.assert_allclose(ranker.logits(query, cands), fuse(per_task, [1, 1, 3]), rtol=1e-5)
    report = evaluate_funnel(funnel, world_split, ks=(10,), consistency_k=10,
                             catalogue_consistency=True)  # fmt: skip
    m = report.metrics
    assert 0 <= m["dropped@10:prerank"] <= 10 and 0 < m["dropped@10:recall"] <= 10
    # every user has ≥ 10 merged items, so dropped = K · (1 - consistency)
    assert m["dropped@10:prerank"] == pytest.approx(10 * (1 - m["consistency@10"]), abs=1e-6)
    assert pl.DataFrame(ranker.task_log_["valid_auc"]).width >= 1


def test_recall_samples_events_by_the_same_tasks(world: Dataset) -> None:
    from funnelrec.recall.two_tower_tasks import event_keep

    tasks = [TaskDef(name="click", column="click", weight=1.0),
             TaskDef(name="like", column="like", weight=0.5),
             TaskDef(name="purchase", column="purchase", weight=2.0)]  # fmt: skip
    keep = event_keep(world, tasks, min_keep=0.1)
    log = world.interactions[world.time_order]
    like, buy = log["like"].to_numpy() > 0.5, log["purchase"].to_numpy() > 0.5
    np.testing.assert_allclose(keep[buy & like], 1.0)
    np.testing.assert_allclose(keep[~like & ~buy], 1.0 / 3.5)
    np.testing.assert_allclose(keep[like & ~buy], 1.5 / 3.5)
    with pytest.raises(ConfigError, match="'likes'"):
        event_keep(world, [TaskDef(name="like", column="likes")], 0.1)
    config = parse_config({**_config(), "recall": {"channels": [{"name": "two_tower_tasks"}]}})
    assert config.recall.channels[0].params["tasks"][2]["weight"] == 3.0
