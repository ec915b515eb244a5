"""Offline evaluation metrics, pure numpy and vectorised over all users.

Conventions:
    * ``topk`` is an ``int64[U, K]`` matrix of recommended items, best first, padded with ``-1``
      when a user got fewer than ``K`` items. Padding never counts as a recommendation.
    * Ground truth is ragged (``truth_offsets[U+1]`` + ``truth_items[T]``, see
      ``funnelrec.ragged``) in the same row order as ``topk``. Repeated truth items of a user
      count once; a repeated recommendation counts only at its first position.
    * Ranking metrics follow RecBole's full-ranking definitions and are averaged over the users
      having at least one truth item; a requested ``K`` larger than ``topk``'s width behaves as if
      the lists were padded with ``-1`` up to ``K``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from funnelrec import ragged

IntArray = npt.NDArray[np.int64]
F64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RANKING_METRICS = ("recall", "ndcg", "hit", "mrr", "precision")


# -- input handling ---------------------------------------------------------------------------
def _as_topk(topk: npt.ArrayLike) -> IntArray:
    top = np.asarray(topk, dtype=np.int64)
    if top.ndim != 2:
        raise ValueError(f"topk must be a [U, K] matrix, got shape {top.shape}")
    return top


def _as_ragged(
    offsets: npt.ArrayLike, items: npt.ArrayLike, n_rows: int
) -> tuple[IntArray, IntArray]:
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    val = np.asarray(items, dtype=np.int64).reshape(-1)
    if len(off) != n_rows + 1:
        raise ValueError(f"offsets must have {n_rows + 1} entries (rows + 1), got {len(off)}")
    if off[0] != 0 or off[-1] != len(val) or np.any(np.diff(off) < 0):
        raise ValueError(f"offsets must rise from 0 to {len(val)} (the number of items)")
    if np.any(val < 0):
        raise ValueError("ragged items must be non-negative item indices")
    return off, val


def _unique_row_keys(offsets: IntArray, items: IntArray, width: int) -> IntArray:
    """Sorted unique ``row * width + item`` keys of a ragged batch."""
    return np.unique(ragged.row_ids(offsets) * width + items)


def _truth_counts(offsets: IntArray, items: IntArray) -> IntArray:
    """Number of distinct truth items per row ``[U]``."""
    n_rows = len(offsets) - 1
    if len(items) == 0:
        return np.zeros(n_rows, dtype=np.int64)
    width = int(items.max()) + 1
    keys = _unique_row_keys(offsets, items, width)
    return np.bincount(keys // width, minlength=n_rows).astype(np.int64)


# -- ranking ----------------------------------------------------------------------------------
def hits(
    topk: npt.ArrayLike, truth_offsets: npt.ArrayLike, truth_items: npt.ArrayLike
) -> BoolArray:
    """Whether each recommended item is one of its user's truth items.

    Args:
        topk: ``int64[U, K]`` recommendations, ``-1`` padded.
        truth_offsets: ``int64[U+1]`` ragged ground-truth offsets.
        truth_items: ``int64[T]`` ground-truth items (non-negative).

    Returns:
        ``bool[U, K]``; padding and repeats of an earlier recommendation are ``False``.
    """
    top = _as_topk(topk)
    off, items = _as_ragged(truth_offsets, truth_items, top.shape[0])
    valid = top >= 0
    if len(items) == 0 or not valid.any():
        return np.zeros(top.shape, dtype=np.bool_)
    width = max(int(top.max()), int(items.max())) + 1
    rows = np.arange(top.shape[0], dtype=np.int64)[:, None]
    keys = np.where(valid, rows * width + top, -1)
    truth_keys = _unique_row_keys(off, items, width)
    pos = np.minimum(np.searchsorted(truth_keys, keys), len(truth_keys) - 1)
    found = ((truth_keys[pos] == keys) & valid).reshape(-1)
    # a repeated recommendation only hits at its first position (row-major order = rank order)
    hit_idx = np.flatnonzero(found)
    _, first = np.unique(keys.reshape(-1)[hit_idx], return_index=True)
    out = np.zeros(found.size, dtype=np.bool_)
    out[hit_idx[first]] = True
    return out.reshape(top.shape)


def per_user_ranking_metrics(
    topk: npt.ArrayLike,
    truth_offsets: npt.ArrayLike,
    truth_items: npt.ArrayLike,
    ks: Sequence[int] = (10, 20),
) -> dict[str, F64Array]:
    """Per-user ``recall/ndcg/hit/mrr/precision@K`` for every ``K`` in ``ks``.

    Args:
        topk: ``int64[U, K]`` recommendations, ``-1`` padded.
        truth_offsets, truth_items: ragged ground truth (``[U+1]`` / ``[T]``).
        ks: cut-offs; may exceed ``topk``'s width.

    Returns:
        ``{"recall@10": float64[U], ...}``; ``NaN`` for users without truth items.
    """
    cutoffs = [int(k) for k in ks]
    if not cutoffs or min(cutoffs) < 1:
        raise ValueError(f"ks must be positive cut-offs, got {tuple(ks)}")
    top = _as_topk(topk)
    off, items = _as_ragged(truth_offsets, truth_items, top.shape[0])
    max_k = max(cutoffs)
    hit = hits(top, off, items)[:, :max_k].astype(np.float64)
    if hit.shape[1] < max_k:
        hit = np.pad(hit, ((0, 0), (0, max_k - hit.shape[1])))
    n_truth = _truth_counts(off, items)
    has_truth = n_truth > 0
    discount = 1.0 / np.log2(np.arange(2, max_k + 2, dtype=np.float64))
    ideal = np.cumsum(discount)
    n_hits = np.cumsum(hit, axis=1)
    dcg = np.cumsum(hit * discount, axis=1)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), max_k)
    denom = np.where(has_truth, n_truth, 1).astype(np.float64)
    out: dict[str, F64Array] = {}
    for k in cutoffs:
        nh = n_hits[:, k - 1]
        idcg = ideal[np.clip(np.minimum(n_truth, k) - 1, 0, None)]
        values = {
            "recall": nh / denom,
            "ndcg": dcg[:, k - 1] / idcg,
            "hit": (nh > 0).astype(np.float64),
            "mrr": np.where(first < k, 1.0 / (first + 1.0), 0.0),
            "precision": nh / k,
        }
        for name in RANKING_METRICS:
            out[f"{name}@{k}"] = np.where(has_truth, values[name], np.nan)
    return out


def ranking_metrics(
    topk: npt.ArrayLike,
    truth_offsets: npt.ArrayLike,
    truth_items: npt.ArrayLike,
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Mean ``recall/ndcg/hit/mrr/precision@K`` over users with at least one truth item.

    Raises:
        ValueError: if no user has a truth item.
    """
    per_user = per_user_ranking_metrics(topk, truth_offsets, truth_items, ks)
    first = next(iter(per_user.values()))
    evaluated = ~np.isnan(first)
    if not evaluated.any():
        raise ValueError("no user has a ground-truth item; ranking metrics are undefined")
    return {name: float(values[evaluated].mean()) for name, values in per_user.items()}


def stage_recall(
    cand_offsets: npt.ArrayLike,
    cand_items: npt.ArrayLike,
    truth_offsets: npt.ArrayLike,
    truth_items: npt.ArrayLike,
    per_user: bool = False,
) -> float:
    """Share of ground-truth items still present in a ragged candidate set.

    Args:
        cand_offsets, cand_items: candidates per user (``[U+1]`` / ``[N]``); negative items
            (padding) are ignored.
        truth_offsets, truth_items: ragged ground truth (``[U+1]`` / ``[T]``).
        per_user: ``False`` micro-averages over all (distinct per user) truth items;
            ``True`` averages the per-user share over users with at least one truth item.

    Raises:
        ValueError: if no user has a truth item.
    """
    c_off = np.asarray(cand_offsets, dtype=np.int64).reshape(-1)
    t_off, t_items = _as_ragged(truth_offsets, truth_items, len(c_off) - 1)
    c_items = np.asarray(cand_items, dtype=np.int64).reshape(-1)
    if c_off[-1] != len(c_items):
        raise ValueError(f"cand_offsets must end at {len(c_items)} (the number of candidates)")
    n_truth = _truth_counts(t_off, t_items)
    if n_truth.sum() == 0:
        raise ValueError("no user has a ground-truth item; stage recall is undefined")
    width = int(t_items.max()) + 1
    truth_keys = _unique_row_keys(t_off, t_items, width)
    keep = (c_items >= 0) & (c_items < width)
    cand_keys = ragged.row_ids(c_off)[keep] * width + c_items[keep]
    pos = np.minimum(np.searchsorted(truth_keys, cand_keys), len(truth_keys) - 1)
    present = np.zeros(len(truth_keys), dtype=np.bool_)
    present[pos[truth_keys[pos] == cand_keys]] = True
    found = np.bincount(truth_keys[present] // width, minlength=len(n_truth))
    if not per_user:
        return float(found.sum() / n_truth.sum())
    has = n_truth > 0
    return float(np.mean(found[has] / n_truth[has]))


# -- beyond accuracy ---------------------------------------------------------------------------
def coverage(topk: npt.ArrayLike, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one list."""
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    top = _as_topk(topk)
    return float(len(np.unique(top[top >= 0])) / n_items)


def intra_list_diversity(topk: npt.ArrayLike, item_category: npt.ArrayLike) -> float:
    """Mean over lists of the share of item pairs whose categories differ.

    An item with category ``-1`` (unknown) is treated as its own, unique category: it differs
    from every other item, including other unknown ones. Lists with fewer than 2 items are
    skipped. Repeated items within a list are pairs of the same category.

    Args:
        topk: ``int64[U, K]`` recommendations, ``-1`` padded.
        item_category: ``int64[n_items]`` category of each item, ``-1`` if unknown.

    Raises:
        ValueError: if no list has two items.
    """
    top = _as_topk(topk)
    cats = np.asarray(item_category, dtype=np.int64)
    valid = top >= 0
    n = valid.sum(axis=1)
    scored = n >= 2
    if not scored.any():
        raise ValueError("no list has two or more items; intra-list diversity is undefined")
    cat = np.where(valid, cats[np.where(valid, top, 0)], -1)
    known = cat >= 0
    rows = np.broadcast_to(np.arange(top.shape[0], dtype=np.int64)[:, None], top.shape)
    width = int(cat.max()) + 1 if known.any() else 1
    keys, counts = np.unique(rows[known] * width + cat[known], return_counts=True)
    same = np.bincount(keys // width, weights=counts * (counts - 1) / 2.0, minlength=len(n))
    pairs = n * (n - 1) / 2.0
    return float(np.mean(1.0 - same[scored] / pairs[scored]))


def novelty(topk: npt.ArrayLike, item_popularity: npt.ArrayLike, n_users: int) -> float:
    """Mean self-information ``-log2(pop_i / n_users)`` over all recommended items.

    Args:
        topk: ``int64[U, K]`` recommendations, ``-1`` padded.
        item_popularity: ``float[n_items]`` interaction (user) counts; clipped to ``>= 1``.
        n_users: number of users the popularity was counted over.

    Raises:
        ValueError: if there is no recommended item.
    """
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}")
    top = _as_topk(topk)
    items = top[top >= 0]
    if len(items) == 0:
        raise ValueError("no recommended item; novelty is undefined")
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64)[items], 1.0)
    return float(np.mean(-np.log2(pop / n_users)))


def head_share(topk: npt.ArrayLike, item_popularity: npt.ArrayLike, top_fraction: float) -> float:
    """Share of recommended items that belong to the popularity head.

    The head is the ``ceil(top_fraction * n_items)`` most popular items, extended by every
    item tied in popularity with the last of them (so the result does not depend on item ids).

    Args:
        topk: ``int64[U, K]`` recommendations, ``-1`` padded.
        item_popularity: ``float[n_items]`` popularity of each item.
        top_fraction: head size as a fraction of the catalogue, in ``(0, 1]``.

    Raises:
        ValueError: if ``top_fraction`` is out of range or there is no recommended item.
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    top = _as_topk(topk)
    items = top[top >= 0]
    if len(items) == 0:
        raise ValueError("no recommended item; head share is undefined")
    pop = np.asarray(item_popularity, dtype=np.float64)
    n_head = max(1, int(np.ceil(top_fraction * len(pop) - 1e-9)))
    threshold = np.sort(pop)[::-1][n_head - 1]
    return float(np.mean(pop[items] >= threshold))


# -- classification ---------------------------------------------------------------------------
def _binary(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[BoolArray, F64Array]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise ValueError(f"labels and scores differ in length: {len(y)} vs {len(s)}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be binary (0/1 or bool)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (found NaN or inf)")
    return y.astype(np.bool_), s


def _group_auc(y: BoolArray, s: F64Array, group: IntArray, n_groups: int) -> tuple[F64Array, ...]:
    """Per-group ``(auc, n_pos, n_neg)``; average ranks for ties (Mann-Whitney U)."""
    order = np.lexsort((s, group))
    gs, ss, ys = group[order], s[order], y[order]
    n = len(order)
    new_group = np.ones(n, dtype=np.bool_)
    new_group[1:] = gs[1:] != gs[:-1]
    new_run = new_group.copy()
    new_run[1:] |= ss[1:] != ss[:-1]
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], n) - 1
    run_of = np.cumsum(new_run) - 1
    group_start = np.flatnonzero(new_group)[np.cumsum(new_group) - 1]
    rank = (run_start[run_of] + run_end[run_of]) / 2.0 - group_start + 1.0
    n_pos = np.bincount(gs, weights=ys, minlength=n_groups).astype(np.float64)
    n_neg = np.bincount(gs, minlength=n_groups).astype(np.float64) - n_pos
    rank_pos = np.bincount(gs, weights=rank * ys, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc_g = (rank_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return auc_g, n_pos, n_neg


def auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC from ranks (ties get the average rank), equal to ``sklearn``'s ``roc_auc_score``.

    Args:
        labels: ``[N]`` binary labels.
        scores: ``[N]`` finite scores (higher means more likely positive).

    Raises:
        ValueError: if only one class is present.
    """
    y, s = _binary(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ValueError(
            f"AUC needs both classes: got {n_pos} positive and {len(y) - n_pos} negative labels"
        )
    auc_g, _, _ = _group_auc(y, s, np.zeros(len(y), dtype=np.int64), 1)
    return float(auc_g[0])


def gauc(labels: npt.ArrayLike, scores: npt.ArrayLike, groups: npt.ArrayLike) -> float:
    """Group AUC: per-group AUC averaged with impression-count weights.

    Groups (e.g. users) with only one class are skipped.

    Args:
        labels: ``[N]`` binary labels.
        scores: ``[N]`` finite scores.
        groups: ``[N]`` group id of each impression (any integers).

    Raises:
        ValueError: if no group has both classes.
    """
    y, s = _binary(labels, scores)
    g_raw = np.asarray(groups).reshape(-1)
    if len(g_raw) != len(y):
        raise ValueError(f"groups and labels differ in length: {len(g_raw)} vs {len(y)}")
    uniq, g = np.unique(g_raw, return_inverse=True)
    auc_g, n_pos, n_neg = _group_auc(y, s, g.astype(np.int64).reshape(-1), len(uniq))
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        raise ValueError("GAUC needs at least one group with both positive and negative labels")
    weight = (n_pos + n_neg)[both]
    return float(np.sum(auc_g[both] * weight) / np.sum(weight))


def logloss(labels: npt.ArrayLike, probs: npt.ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy (natural log), probabilities clipped to ``[eps, 1 - eps]``.

    Computed in float64, so clipping works for float32 inputs too.
    """
    y, p = _binary(labels, probs)
    if len(y) == 0:
        raise ValueError("logloss of an empty array is undefined")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))
