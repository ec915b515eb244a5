"""Per-stage quality for the report, from one batched pass over the test users.

For every stage (each recall channel, the merged recall set, pre-rank, rank and the final
slate) the first ``k`` items are scored like a recommendation list: Recall/NDCG/Hit@k against
the test items, and coverage, intra-list diversity and novelty — so accuracy can be set
against diversity and coverage stage by stage.

Per-objective AUC: the ranker re-scores everything pre-rank kept (as in
``eval.funnel``'s consistency check); for every objective (``test item``: any test
interaction; each feedback column: test interactions with positive feedback, ``rating >= 4``
for ratings) the GAUC over users of each stage's score on that set says how well the stage
orders what the user went on to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import batches
from funnelrec.pipeline import Funnel
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.trace import FunnelTrace
from funnelrec.types import Candidates

RATING_LIKE = 4.0  # a rating at or above this counts as positive feedback


@dataclass
class StageQuality:
    """Metrics of one stage's first ``k`` items (``metrics``: ``recall@10``, ...)."""

    stage: str
    metrics: dict[str, float]


@dataclass
class _Scores:
    """Labels, scores per stage and user groups accumulated over batches."""

    labels: dict[str, list[np.ndarray]] = field(default_factory=dict)
    scores: dict[str, list[FloatArray]] = field(default_factory=dict)
    groups: list[IntArray] = field(default_factory=list)

    def gauc(self) -> dict[str, dict[str, float]]:
        """objective → stage → GAUC (objectives without both classes are left out)."""
        if not self.groups:
            return {}
        groups = np.concatenate(self.groups)
        out: dict[str, dict[str, float]] = {}
        for objective, parts in self.labels.items():
            y = np.concatenate(parts)
            row: dict[str, float] = {}
            for stage, s in self.scores.items():
                try:
                    row[stage] = metrics.gauc(y, np.concatenate(s), groups)
                except ValueError:  # no user with both classes
                    continue
            if row:
                out[objective] = row
        return out


def objective_parts(test: Dataset) -> dict[str, Dataset]:
    """Objective name → the test interactions that count as positives for it."""
    out = {"test item": test}
    frame = test.interactions
    for fb in test.feedback:
        if fb not in frame.columns:
            continue
        name, cond = (
            (f"{fb} >= {RATING_LIKE:g}", pl.col(fb) >= RATING_LIKE)
            if fb == "rating"
            else (fb, pl.col(fb) > 0)
        )
        part = frame.filter(cond)
        if part.height > 0:
            out[name] = test.with_interactions(part)
    return out


def stage_quality(
    funnel: Funnel, split: Split, k: int = 10, batch_size: int = 1024
) -> tuple[list[StageQuality], dict[str, dict[str, float]]]:
    """Top-``k`` quality of every stage, and per-objective GAUC of every stage's score.

    Returns:
        ``(stages in funnel order, {objective: {stage: gauc}})`` over warm test users.
    """
    users = split.test_users()
    users = users[np.diff(split.history.user_item.indptr)[users] > 0]
    tops: dict[str, list[IntArray]] = {}
    objectives = objective_parts(split.test)
    acc = _Scores()
    for chunk in batches(users, batch_size):
        query = split.test_query(chunk, k)
        trace = funnel.run(query)
        for name, cands in _stage_lists(trace).items():
            tops.setdefault(name, []).append(cands.dense(k))
        scored = funnel.ranker.score(query, trace.prerank)
        _add_scores(acc, scored, chunk, split, objectives)
    if not tops:
        return [], {}
    t_off, t_items = split.truth(split.test, users)
    ds = split.train
    cats = ds.item_categories[0]
    rows = []
    for name, parts in tops.items():
        top = np.concatenate(parts)
        values = metrics.ranking_metrics(top, t_off, t_items, ks=(k,))
        values[f"coverage@{k}"] = metrics.coverage(top, ds.n_items)
        if (np.sum(top >= 0, axis=1) >= 2).any():
            values[f"diversity@{k}"] = metrics.intra_list_diversity(top, cats)
        if (top >= 0).any():
            values[f"novelty@{k}"] = metrics.novelty(top, ds.item_popularity, ds.n_users)
        rows.append(StageQuality(name, values))
    return rows, acc.gauc()


def _stage_lists(trace: FunnelTrace) -> dict[str, Candidates]:
    channels = {f"recall:{name}": c.sorted() for name, c in trace.channels.items()}
    return {**channels, **trace.stages()}


def _add_scores(
    acc: _Scores, scored: Candidates, chunk: IntArray, split: Split, parts: dict[str, Dataset]
) -> None:
    """Labels of ``scored``'s items per objective, and each stage's score of them."""
    if len(scored) == 0:
        return
    for objective, part in parts.items():
        t_off, t_items = split.truth(part, chunk)
        hit = ragged.membership(scored.offsets, scored.item_idx, t_off, t_items)
        acc.labels.setdefault(objective, []).append(hit)
    stage_scores = dict(scored.stage_scores)
    stage_scores.setdefault("rank", scored.scores)
    for stage, s in stage_scores.items():
        acc.scores.setdefault(stage, []).append(np.asarray(s, dtype=np.float64))
    acc.groups.append(chunk[scored.row_ids()])
