"""Funnel evaluation: how many test items survive each stage, and end-to-end metrics.

For every test user the whole funnel runs once (batched); the share of the user's test
items still present is measured after each recall channel, after the merge, after pre-rank,
after rank and in the final slate (micro-averaged over test items).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import DEFAULT_KS, batches
from funnelrec.pipeline import Funnel
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates


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


def evaluate_funnel(
    funnel: Funnel, split: Split, ks: tuple[int, ...] = DEFAULT_KS, batch_size: int = 1024
) -> FunnelReport:
    """Run the funnel for every test user of ``split`` and measure every stage."""
    start = time.perf_counter()
    users = split.test_users()
    history_len = np.diff(split.history.user_item.indptr)
    warm = users[history_len[users] > 0]
    cold = users[history_len[users] == 0]
    counter = _Counter()
    k_max = max(ks)
    topk_rows = []
    n_truth = 0
    for chunk in batches(warm, batch_size):
        trace = funnel.run(split.test_query(chunk, k_max))
        t_off, t_items = split.truth(split.test, chunk)
        n_truth += len(t_items)
        quotas = funnel.config.recall.quotas()
        for name, cands in trace.channels.items():
            counter.add(f"recall:{name}", cands.truncate(quotas[name]), t_off, t_items)
        for name, cands in trace.stages().items():
            counter.add(name, cands, t_off, t_items)
        assert trace.slate is not None
        topk_rows.append(trace.slate.dense(k_max))
    topk = np.concatenate(topk_rows) if topk_rows else np.zeros((0, k_max), dtype=np.int64)
    t_off, t_items = split.truth(split.test, warm)
    final = metrics.ranking_metrics(topk, t_off, t_items, ks=ks)
    n_users = max(len(warm), 1)
    rows = [
        StageRow(s, counter.sizes[s] / n_users, counter.found[s] / max(n_truth, 1))
        for s in counter.order
    ]
    cold_metrics = None
    if len(cold):
        c_top = np.concatenate(
            [
                funnel.recommend(split.test_query(c, k_max)).dense(k_max)
                for c in batches(cold, batch_size)
            ]
        )
        c_off, c_items = split.truth(split.test, cold)
        cold_metrics = metrics.ranking_metrics(c_top, c_off, c_items, ks=ks)
    return FunnelReport(
        rows, final, len(warm), time.perf_counter() - start, cold_metrics, len(cold)
    )
