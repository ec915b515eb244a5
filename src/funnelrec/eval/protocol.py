"""Offline evaluation of any recommender under a split: full ranking, all users batched.

One evaluation plan (``EvalPlan``) serves every evaluator (``evaluate`` here, and
``eval.funnel.evaluate_funnel``): the users of a part (everyone with at least one item in
it), which of them are warm (some history before the part: train, plus valid at test time)
and which cold, their ground truth and the history queries come from, all built once. Both
evaluators average their headline metrics over the same users (all of them) and report the
``warm`` and ``cold`` users as separate rows (``segments``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.types import Candidates, Query

RecommendFn = Callable[[Query], Candidates]
DEFAULT_KS = (10, 20)


SEGMENTS = ("warm", "cold")


@dataclass(frozen=True)
class Segment:
    """Metrics of one group of users (``warm``: with history, ``cold``: without)."""

    n_users: int
    metrics: dict[str, float]


@dataclass
class EvalResult:
    """Averaged metrics over the evaluated users, with timing; ``segments`` holds the same
    metrics for the warm and the cold users apart (only groups with users)."""

    metrics: dict[str, float]
    n_users: int
    wall_s: float
    extra: dict[str, float] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)

    def all(self) -> dict[str, float]:
        return {**self.metrics, **self.extra}


@dataclass(frozen=True)
class EvalPlan:
    """Who is evaluated on which part, against what, built once.

    Attributes:
        split: the split evaluated.
        part: ``"test"`` (history = train + valid) or ``"valid"`` (history = train).
        users: ``[U]`` sorted dense ids of the evaluated users.
        warm: ``[U]`` whether each user has any history before the part.
        truth_offsets, truth_items: ragged distinct items of each user in the part.
    """

    split: Split
    part: str
    users: IntArray
    warm: BoolArray
    truth_offsets: IntArray
    truth_items: IntArray

    @classmethod
    def build(cls, split: Split, part: str = "test", users: IntArray | None = None) -> EvalPlan:
        """The plan for ``part``'s users (or the given ``users``, e.g. a subsample)."""
        if part not in ("test", "valid"):
            raise ValueError(f"part must be 'test' or 'valid', got {part!r}")
        target = split.test if part == "test" else split.valid
        if users is None:
            users = np.unique(target.arrays.user_idx)
        users = np.asarray(users, dtype=np.int64)
        history = split.history if part == "test" else split.train
        warm = np.diff(history.user_item.indptr)[users] > 0
        t_off, t_items = split.truth(target, users)
        return cls(split, part, users, warm, t_off, t_items)

    def query(self, rows: IntArray, k: int) -> Query:
        """Queries of the plan's users at positions ``rows`` (history excluded)."""
        users = self.users[rows]
        split = self.split
        return split.test_query(users, k) if self.part == "test" else split.valid_query(users, k)

    def truth(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """Ragged ground truth of the users at positions ``rows``."""
        offsets, flat = _select(self.truth_offsets, rows)
        return offsets, self.truth_items[flat]

    def segments(self) -> dict[str, IntArray]:
        """Positions of the ``warm`` and of the ``cold`` users (groups without users left out)."""
        groups = {"warm": np.flatnonzero(self.warm), "cold": np.flatnonzero(~self.warm)}
        return {name: rows.astype(np.int64) for name, rows in groups.items() if len(rows)}

    def ranking(
        self, topk: IntArray, ks: tuple[int, ...]
    ) -> tuple[dict[str, float], dict[str, Segment]]:
        """Ranking metrics of ``topk [U, K]`` (one row per plan user) over all users, and
        per segment."""
        overall = metrics.ranking_metrics(topk, self.truth_offsets, self.truth_items, ks=ks)
        per = {
            name: Segment(len(rows), metrics.ranking_metrics(topk[rows], *self.truth(rows), ks=ks))
            for name, rows in self.segments().items()
        }
        return overall, per


def _select(offsets: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """Offsets and flat indices of the given rows of a ragged batch."""
    lens = ragged.lengths(offsets)[rows]
    new = ragged.offsets_from_lengths(lens)
    flat = np.repeat(offsets[rows], lens) + ragged.position_in_row(new)
    return new, flat.astype(np.int64)


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
    split: Split | EvalPlan,
    users: IntArray | None,
    k: int,
    batch_size: int = 1024,
    part: str = "test",
) -> IntArray:
    """``[U, k]`` recommendations (``-1`` padded) for ``users`` (``None``: the plan's users),
    computed batch by batch."""
    plan = split if isinstance(split, EvalPlan) else EvalPlan.build(split, part, users)
    rows = np.arange(len(plan.users), dtype=np.int64)
    out = [recommend(plan.query(chunk, k)).dense(k) for chunk in batches(rows, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def evaluate(
    recommend: RecommendFn,
    split: Split,
    ks: tuple[int, ...] = DEFAULT_KS,
    part: str = "test",
    batch_size: int = 1024,
    users: IntArray | None = None,
    plan: EvalPlan | None = None,
) -> EvalResult:
    """Full-ranking metrics at every ``k`` in ``ks`` (plus coverage, diversity, novelty at
    the smallest ``k``) over the users of ``part`` ("test" or "valid"), warm and cold ones
    also apart (``segments``). ``plan``: a prebuilt ``EvalPlan`` (then ``part``/``users``
    are ignored)."""
    start = time.perf_counter()
    plan = plan if plan is not None else EvalPlan.build(split, part, users)
    k_max = max(ks)
    topk = collect_topk(recommend, plan, None, k_max, batch_size)
    result, segments = plan.ranking(topk, ks)
    k0 = min(ks)
    ds = plan.split.train
    extra = {
        f"coverage@{k0}": metrics.coverage(topk[:, :k0], ds.n_items),
        f"diversity@{k0}": metrics.intra_list_diversity(topk[:, :k0], ds.item_categories[0]),
        f"novelty@{k0}": metrics.novelty(topk[:, :k0], ds.item_popularity, ds.n_users),
    }
    return EvalResult(result, len(plan.users), time.perf_counter() - start, extra, segments)
