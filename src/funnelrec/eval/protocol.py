"""Offline evaluation of any recommender under a split: full ranking, all users batched."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates, Query

RecommendFn = Callable[[Query], Candidates]
DEFAULT_KS = (10, 20)


@dataclass
class EvalResult:
    """Averaged metrics over the evaluated users, with timing."""

    metrics: dict[str, float]
    n_users: int
    wall_s: float
    extra: dict[str, float] = field(default_factory=dict)

    def all(self) -> dict[str, float]:
        return {**self.metrics, **self.extra}


def subsample_users(users: IntArray, limit: int | None, seed: int) -> IntArray:
    """At most ``limit`` of ``users`` (sorted, drawn with ``seed``); all when ``limit`` is None."""
    if limit is None or len(users) <= limit:
        return users
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(users, limit, replace=False))


def batches(users: IntArray, batch_size: int) -> list[IntArray]:
    return [users[i : i + batch_size] for i in range(0, len(users), batch_size)]


def collect_topk(
    recommend: RecommendFn,
    split: Split,
    users: IntArray,
    k: int,
    batch_size: int = 1024,
    part: str = "test",
) -> IntArray:
    """``[U, k]`` recommendations (``-1`` padded) for ``users``, computed batch by batch."""
    rows = []
    for chunk in batches(users, batch_size):
        query = split.test_query(chunk, k) if part == "test" else split.valid_query(chunk, k)
        rows.append(recommend(query).dense(k))
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def evaluate(
    recommend: RecommendFn,
    split: Split,
    ks: tuple[int, ...] = DEFAULT_KS,
    part: str = "test",
    batch_size: int = 1024,
    users: IntArray | None = None,
) -> EvalResult:
    """Full-ranking metrics at every ``k`` in ``ks`` (plus coverage, diversity, novelty at
    the smallest ``k``) for the users of ``part`` ("test" or "valid")."""
    start = time.perf_counter()
    target = split.test if part == "test" else split.valid
    if users is None:
        users = np.unique(target.arrays.user_idx)
    k_max = max(ks)
    topk = collect_topk(recommend, split, users, k_max, batch_size, part)
    t_off, t_items = split.truth(target, users)
    result = metrics.ranking_metrics(topk, t_off, t_items, ks=ks)
    k0 = min(ks)
    ds = split.train
    extra = {
        f"coverage@{k0}": metrics.coverage(topk[:, :k0], ds.n_items),
        f"diversity@{k0}": metrics.intra_list_diversity(topk[:, :k0], ds.item_categories[0]),
        f"novelty@{k0}": metrics.novelty(topk[:, :k0], ds.item_popularity, ds.n_users),
    }
    return EvalResult(result, len(users), time.perf_counter() - start, extra)
