"""Is the funnel more than its best part? NDCG after each stage, each channel alone, and the
lift over the best channel with a paired bootstrap 95% interval.

* ``stage_ndcg``: per-user NDCG@k of the merged recall order, the pre-rank order, the rank
  order and the final slate (one funnel pass per batch of users), so the table can mark a
  stage that lowers accuracy;
* ``channel_ndcg``: per-user NDCG@k of every recall channel alone (its own top ``k``);
* ``bootstrap_lift``: mean difference of two per-user arrays over the same users, with a
  percentile bootstrap interval (users resampled with replacement).

Every function takes the users of ``part`` (``"test"``, or ``"valid"`` for the internal
validation figure: history = training part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import batches
from funnelrec.pipeline import Funnel
from funnelrec.types import Candidates, Query

F64Array = npt.NDArray[np.float64]
STAGES = ("recall", "prerank", "rank", "final")


@dataclass(frozen=True)
class Lift:
    """``mean(a - b)`` with its bootstrap 95% interval and the ratio ``mean(a) / mean(b)``."""

    diff: float
    lo: float
    hi: float
    ratio: float

    def as_dict(self) -> dict[str, float]:
        return {"diff": self.diff, "lo": self.lo, "hi": self.hi, "ratio": self.ratio}


def _users_query(split: Split, part: str) -> tuple[np.ndarray, object]:
    target = split.test if part == "test" else split.valid
    users = np.unique(target.arrays.user_idx).astype(np.int64)
    known = np.diff(split.history.user_item.indptr)[users] > 0
    return users[known], target


def _query(split: Split, chunk: np.ndarray, k: int, part: str) -> Query:
    return split.test_query(chunk, k) if part == "test" else split.valid_query(chunk, k)


def _per_user(
    rows: list[np.ndarray], split: Split, users: np.ndarray, part: str, k: int
) -> F64Array:
    target = split.test if part == "test" else split.valid
    top = np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)
    t_off, t_items = split.truth(target, users)
    return metrics.per_user_ranking_metrics(top, t_off, t_items, ks=(k,))[f"ndcg@{k}"]


def stage_ndcg(
    funnel: Funnel, split: Split, k: int = 10, part: str = "test", batch_size: int = 1024
) -> dict[str, F64Array]:
    """Per-user NDCG@``k`` of the list after each stage (``STAGES``), warm users of ``part``."""
    users, _ = _users_query(split, part)
    rows: dict[str, list[np.ndarray]] = {s: [] for s in STAGES}
    for chunk in batches(users, batch_size):
        trace = funnel.run(_query(split, chunk, k, part))
        lists: dict[str, Candidates] = {
            "recall": trace.merged, "prerank": trace.prerank, "rank": trace.rank,
        }  # fmt: skip
        assert trace.slate is not None
        lists["final"] = trace.slate
        for stage, cands in lists.items():
            rows[stage].append(cands.sorted().dense(k))
    return {s: _per_user(rows[s], split, users, part, k) for s in STAGES}


def channel_ndcg(
    funnel: Funnel, split: Split, k: int = 10, part: str = "test", batch_size: int = 1024
) -> dict[str, F64Array]:
    """Per-user NDCG@``k`` of every recall channel alone, same users as ``stage_ndcg``."""
    users, _ = _users_query(split, part)
    out = {}
    for cid, channel in funnel.channels.items():
        rows = [
            channel.retrieve(_query(split, chunk, k, part), k).dense(k)
            for chunk in batches(users, batch_size)
        ]
        out[cid] = _per_user(rows, split, users, part, k)
    return out


def bootstrap_lift(a: F64Array, b: F64Array, n_boot: int = 2000, seed: int = 0) -> Lift:
    """Paired bootstrap of ``mean(a - b)`` over users (NaN users dropped from both)."""
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return Lift(0.0, 0.0, 0.0, float("nan"))
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    ratio = float(a.mean() / b.mean()) if b.mean() > 0 else float("inf")
    return Lift(float(d.mean()), float(lo), float(hi), ratio)
