"""Funnel evaluation: how many test items survive each stage, and end-to-end metrics.

For every test user of the evaluation plan (``eval.protocol.EvalPlan``, the users
``evaluate`` averages over too: warm and cold) the whole funnel runs once (batched); the
share of the user's test items still present is measured after each recall channel, after
the merge, after pre-rank, after rank and in the final slate (micro-averaged over test
items). The slate's metrics are reported over all users and for warm and cold users apart.

Stage consistency (``consistency@K`` in the report's metrics): the ranker also scores the
whole merged recall set; the share of its top ``K`` items that pre-rank kept measures how
many items the ranker would love were lost by the cheaper stage (1.0 = no loss).
``dropped@K:prerank`` is the mean number of those top-``K`` items per user that pre-rank
dropped; with ``catalogue_consistency`` the ranker also scores every item of the catalogue
(minus the user's exclusions) and ``dropped@K:recall`` counts how many of its top ``K`` the
merged recall set never contained (small catalogues only: users × items scores).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from funnelrec import provenance, ragged
from funnelrec.data.splits import Split
from funnelrec.eval.protocol import DEFAULT_KS, EvalPlan, Segment, batches
from funnelrec.pipeline import Funnel
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates, Query


@dataclass
class StageRow:
    """One line of the funnel table."""

    stage: str
    mean_candidates: float
    test_recall: float


@dataclass
class FunnelReport:
    """Per-stage survival of test items and the final slate's ranking metrics, over all the
    evaluated users; ``segments``: the slate metrics of the warm and the cold users apart
    (``cold_metrics`` / ``n_cold_users`` repeat the cold row)."""

    stages: list[StageRow]
    metrics: dict[str, float]
    n_users: int
    wall_s: float
    cold_metrics: dict[str, float] | None = None
    n_cold_users: int = 0
    segments: dict[str, Segment] = field(default_factory=dict)


class _Consistency:
    """Items of the ranker's top ``k`` over the merged set that pre-rank kept (and, with
    ``catalogue``, items of its top ``k`` over the catalogue that recall missed)."""

    def __init__(self, k: int, catalogue: bool = False) -> None:
        self.k, self.kept, self.total, self.users = k, 0, 0, 0
        self.catalogue, self.missed = catalogue, 0

    def add(self, funnel: Funnel, query: Query, merged: Candidates, pre: Candidates) -> None:
        top = funnel.ranker.score(query, merged).truncate(self.k)
        hit = ragged.membership(top.offsets, top.item_idx, pre.offsets, pre.item_idx)
        self.kept += int(hit.sum())
        self.total += len(top)
        self.users += query.batch_size
        if self.catalogue:
            best = funnel.ranker.score(query, _catalogue(funnel, query, merged)).truncate(self.k)
            found = ragged.membership(best.offsets, best.item_idx, merged.offsets, merged.item_idx)
            self.missed += int((~found).sum())

    def value(self) -> dict[str, float]:
        if not self.total:
            return {}
        out = {
            f"consistency@{self.k}": self.kept / self.total,
            f"dropped@{self.k}:prerank": (self.total - self.kept) / self.users,
        }
        if self.catalogue:
            out[f"dropped@{self.k}:recall"] = self.missed / self.users
        return out


def _catalogue(funnel: Funnel, query: Query, merged: Candidates) -> Candidates:
    """Every catalogue item per query (minus exclusions), with the recall provenance the
    item has in ``merged`` (absent: none)."""
    n_items = funnel.dataset.n_items
    offsets = np.arange(query.batch_size + 1, dtype=np.int64) * n_items
    items = np.tile(np.arange(n_items, dtype=np.int64), query.batch_size)
    every = Candidates.from_flat(offsets, items, np.zeros(len(items)), None).excluding(query)
    return provenance.transfer(every, merged)


class _Counter:
    def __init__(self) -> None:
        self.found: dict[str, int] = defaultdict(int)
        self.sizes: dict[str, int] = defaultdict(int)
        self.order: list[str] = []

    def add(self, stage: str, cands: Candidates, t_off: IntArray, t_items: IntArray) -> None:
        if stage not in self.found:
            self.order.append(stage)
        hit = ragged.membership(t_off, t_items, cands.offsets, cands.item_idx)
        self.found[stage] += int(hit.sum())
        self.sizes[stage] += len(cands)

    def rows(self, n_users: int, n_truth: int) -> list[StageRow]:
        return [StageRow(s, self.sizes[s] / n_users, self.found[s] / n_truth) for s in self.order]


def evaluate_funnel(
    funnel: Funnel,
    split: Split,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 1024,
    consistency_k: int | None = 50,
    catalogue_consistency: bool = False,
    plan: EvalPlan | None = None,
) -> FunnelReport:
    """Run the funnel once (batched) for every user of the test ``plan`` (default: the same
    ``EvalPlan`` ``eval.protocol.evaluate`` uses: every test user, warm and cold) and measure
    every stage (``consistency_k``: also the stage consistency at that depth, ``None``: skip
    it; ``catalogue_consistency``: also what recall missed of the ranker's catalogue top
    ``K``). Headline metrics are over all the plan's users; ``segments`` holds the warm and
    the cold users apart."""
    start = time.perf_counter()
    plan = plan if plan is not None else EvalPlan.build(split, "test")
    counter = _Counter()
    consistency = _Consistency(consistency_k, catalogue_consistency) if consistency_k else None
    k_max = max(ks)
    topk_rows = []
    quotas = funnel.config.recall.quotas()
    for rows in batches(np.arange(len(plan.users), dtype=np.int64), batch_size):
        query = plan.query(rows, k_max)
        trace = funnel.run(query)
        if consistency is not None:
            consistency.add(funnel, query, trace.merged, trace.prerank)
        t_off, t_items = plan.truth(rows)
        stages = {f"recall:{n}": c.truncate(quotas[n]) for n, c in trace.channels.items()}
        for name, cands in {**stages, **trace.stages()}.items():
            counter.add(name, cands, t_off, t_items)
        assert trace.slate is not None
        topk_rows.append(trace.slate.dense(k_max))
    topk = np.concatenate(topk_rows) if topk_rows else np.zeros((0, k_max), dtype=np.int64)
    final, segments = plan.ranking(topk, ks)
    if consistency is not None:
        final.update(consistency.value())
    table = counter.rows(max(len(plan.users), 1), max(len(plan.truth_items), 1))
    cold = segments.get("cold")
    return FunnelReport(
        stages=table,
        metrics=final,
        n_users=len(plan.users),
        wall_s=time.perf_counter() - start,
        cold_metrics=None if cold is None else cold.metrics,
        n_cold_users=0 if cold is None else cold.n_users,
        segments=segments,
    )
