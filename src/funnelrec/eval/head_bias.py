"""Head-item bias of a recommender: how much it leans on the most popular items.

Reported at cut-off ``k``: the share of recommended items among the top 1% / 10% most popular
items (``metrics.head_share``), catalogue coverage, and the recall of long-tail test items
(test items outside the top 20% most popular), averaged over users with such an item.
Popularity is counted on the split's train part.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import RecommendFn, collect_topk
from funnelrec.ragged import BoolArray, IntArray

TAIL_FRACTION = 0.2


def head_mask(popularity: npt.ArrayLike, top_fraction: float) -> BoolArray:
    """Items in the popularity head (ties with the last head item included)."""
    pop = np.asarray(popularity, dtype=np.float64)
    n_head = max(1, int(np.ceil(top_fraction * len(pop) - 1e-9)))
    threshold = np.sort(pop)[::-1][n_head - 1]
    return np.asarray(pop >= threshold, dtype=np.bool_)


def head_bias_metrics(
    topk: IntArray,
    popularity: npt.ArrayLike,
    truth_offsets: IntArray,
    truth_items: IntArray,
    k: int,
) -> dict[str, float]:
    """Head shares, coverage and long-tail recall of ``topk`` ``[U, >=k]``.

    Args:
        topk: recommendations, ``-1`` padded.
        popularity: ``[n_items]`` train interaction counts.
        truth_offsets, truth_items: ragged test items of the same users.
        k: cut-off.
    """
    top = topk[:, :k]
    pop = np.asarray(popularity, dtype=np.float64)
    out = {
        f"head1_share@{k}": metrics.head_share(top, pop, 0.01),
        f"head10_share@{k}": metrics.head_share(top, pop, 0.10),
        f"coverage@{k}": metrics.coverage(top, len(pop)),
    }
    is_head = head_mask(pop, TAIL_FRACTION)
    tail = ~is_head[truth_items]
    rows = np.repeat(np.arange(len(truth_offsets) - 1), np.diff(truth_offsets))[tail]
    t_off = np.zeros(len(truth_offsets), dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(truth_offsets) - 1), out=t_off[1:])
    if tail.any():
        tail_metrics = metrics.ranking_metrics(top, t_off, truth_items[tail], ks=(k,))
        out[f"tail_recall@{k}"] = tail_metrics[f"recall@{k}"]
    else:
        out[f"tail_recall@{k}"] = float("nan")
    return out


def head_bias(
    recommend: RecommendFn, split: Split, k: int = 10, part: str = "test"
) -> dict[str, float]:
    """``head_bias_metrics`` of ``recommend`` over the users of ``part`` of ``split``."""
    target = split.test if part == "test" else split.valid
    users = np.unique(target.arrays.user_idx)
    topk = collect_topk(recommend, split, users, k, part=part)
    t_off, t_items = split.truth(target, users)
    return head_bias_metrics(topk, split.train.item_popularity, t_off, t_items, k)
