"""Funnel evaluation: how many test items survive each stage, and end-to-end metrics.

For every test user the whole funnel runs once (batched); the share of the user's test
items still present is measured after each recall channel, after the merge, after pre-rank,
after rank and in the final slate (micro-averaged over test items).

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
from dataclasses import dataclass

import numpy as np

from funnelrec import provenance, ragged
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import DEFAULT_KS, batches
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
    """Per-stage survival of test items and the final slate's ranking metrics."""

    stages: list[StageRow]
    metrics: dict[str, float]
    n_users: int
    wall_s: float
    cold_metrics: dict[str, float] | None = None
    n_cold_users: int = 0


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
) -> FunnelReport:
    """Run the funnel for every test user of ``split`` and measure every stage
    (``consistency_k``: also the stage consistency at that depth, ``None``: skip it;
    ``catalogue_consistency``: also what recall missed of the ranker's catalogue top ``K``)."""
    start = time.perf_counter()
    users = split.test_users()
    known = np.diff(split.history.user_item.indptr)[users] > 0
    warm, cold = users[known], users[~known]
    counter = _Counter()
    consistency = _Consistency(consistency_k, catalogue_consistency) if consistency_k else None
    k_max = max(ks)
    topk_rows = []
    n_truth = 0
    quotas = funnel.config.recall.quotas()
    for chunk in batches(warm, batch_size):
        query = split.test_query(chunk, k_max)
        trace = funnel.run(query)
        if consistency is not None:
            consistency.add(funnel, query, trace.merged, trace.prerank)
        t_off, t_items = split.truth(split.test, chunk)
        n_truth += len(t_items)
        stages = {f"recall:{n}": c.truncate(quotas[n]) for n, c in trace.channels.items()}
        for name, cands in {**stages, **trace.stages()}.items():
            counter.add(name, cands, t_off, t_items)
        assert trace.slate is not None
        topk_rows.append(trace.slate.dense(k_max))
    topk = np.concatenate(topk_rows) if topk_rows else np.zeros((0, k_max), dtype=np.int64)
    t_off, t_items = split.truth(split.test, warm)
    final = metrics.ranking_metrics(topk, t_off, t_items, ks=ks)
    if consistency is not None:
        final.update(consistency.value())
    rows = counter.rows(max(len(warm), 1), max(n_truth, 1))
    cold_metrics = _cold_metrics(funnel, split, cold, ks, batch_size) if len(cold) else None
    return FunnelReport(
        rows, final, len(warm), time.perf_counter() - start, cold_metrics, len(cold)
    )


def _cold_metrics(
    funnel: Funnel, split: Split, cold: IntArray, ks: tuple[int, ...], batch_size: int
) -> dict[str, float]:
    """Final-slate metrics of the users without any history (cold start)."""
    k_max = max(ks)
    c_top = np.concatenate(
        [
            funnel.recommend(split.test_query(c, k_max)).dense(k_max)
            for c in batches(cold, batch_size)
        ]
    )
    c_off, c_items = split.truth(split.test, cold)
    return metrics.ranking_metrics(c_top, c_off, c_items, ks=ks)
