"""Known-answer and cross-check tests for ``funnelrec.eval.metrics``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.eval import metrics as M

L3 = 1.0 / math.log2(3)  # discount at rank 2
L4 = 1.0 / math.log2(4)  # discount at rank 3


def _truth(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    return ragged.from_lists(rows)


# -- hand-computed ranking examples ----------------------------------------------------------
# u0: one hit at rank 2 of 2 truth; u1: only one real item (padded), hit at rank 1;
# u2: no truth (skipped); u3: no hit.
TOPK = np.array([[1, 2, 3], [4, -1, -1], [7, 8, 9], [0, 1, 2]], dtype=np.int64)
TRUTH = [[2, 5], [4], [], [9]]


def test_hits_known_answer() -> None:
    off, items = _truth(TRUTH)
    expected = np.array(
        [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]],
        dtype=bool,
    )
    np.testing.assert_array_equal(M.hits(TOPK, off, items), expected)


def test_hits_padding_never_matches_and_repeats_count_once() -> None:
    off, items = _truth([[2], [0]])
    top = np.array([[2, 2, -1], [-1, 0, 0]])
    np.testing.assert_array_equal(
        M.hits(top, off, items), np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    )


def test_hits_empty_truth_and_all_padding() -> None:
    off, items = _truth([[], []])
    assert not M.hits(np.array([[1, 2], [3, 4]]), off, items).any()
    off, items = _truth([[1], [2]])
    assert not M.hits(np.full((2, 3), -1), off, items).any()


def test_ranking_metrics_known_answer() -> None:
    off, items = _truth(TRUTH)
    got = M.ranking_metrics(TOPK, off, items, ks=(1, 3))
    # users 0, 1, 3 are evaluated
    ndcg_u0 = L3 / (1.0 + L3)
    expected = {
        "recall@1": (0 + 1 + 0) / 3,
        "ndcg@1": (0 + 1 + 0) / 3,
        "hit@1": 1 / 3,
        "mrr@1": 1 / 3,
        "precision@1": 1 / 3,
        "recall@3": (0.5 + 1 + 0) / 3,
        "ndcg@3": (ndcg_u0 + 1 + 0) / 3,
        "hit@3": 2 / 3,
        "mrr@3": (0.5 + 1 + 0) / 3,
        "precision@3": (1 / 3 + 1 / 3 + 0) / 3,
    }
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name


def test_per_user_nan_for_users_without_truth() -> None:
    off, items = _truth(TRUTH)
    per_user = M.per_user_ranking_metrics(TOPK, off, items, ks=(3,))
    for values in per_user.values():
        assert values.shape == (4,)
        assert np.isnan(values[2]) and not np.isnan(values[[0, 1, 3]]).any()
    assert per_user["ndcg@3"][0] == pytest.approx(L3 / (1 + L3))


def test_k_larger_than_list_behaves_as_padding() -> None:
    # two truth items, hits at ranks 1 and 3 of a 3-wide list, evaluated at K=5
    off, items = _truth([[10, 30, 99]])
    got = M.ranking_metrics(np.array([[10, 20, 30]]), off, items, ks=(5,))
    assert got["recall@5"] == pytest.approx(2 / 3)
    assert got["precision@5"] == pytest.approx(2 / 5)
    assert got["ndcg@5"] == pytest.approx((1 + L4) / (1 + L3 + L4))
    assert got["mrr@5"] == 1.0 and got["hit@5"] == 1.0


def test_ndcg_ideal_uses_min_truth_k_and_duplicate_truth_counts_once() -> None:
    # 4 truth items (one repeated) but K=2: IDCG over 2 positions; perfect list -> 1
    off, items = _truth([[1, 2, 3, 3, 4]])
    got = M.ranking_metrics(np.array([[1, 2]]), off, items, ks=(2,))
    assert got["ndcg@2"] == pytest.approx(1.0)
    assert got["recall@2"] == pytest.approx(2 / 4)


def test_repeated_recommendation_counts_once() -> None:
    off, items = _truth([[5]])
    got = M.ranking_metrics(np.array([[5, 5, 5]]), off, items, ks=(3,))
    assert got["recall@3"] == 1.0 and got["precision@3"] == pytest.approx(1 / 3)
    assert got["ndcg@3"] == pytest.approx(1.0)


def test_ranking_errors() -> None:
    off, items = _truth([[], []])
    with pytest.raises(ValueError, match="no user has a ground-truth item"):
        M.ranking_metrics(np.array([[1], [2]]), off, items)
    off, items = _truth([[1]])
    with pytest.raises(ValueError, match="offsets must have 3 entries"):
        M.hits(np.array([[1], [2]]), off, items)
    with pytest.raises(ValueError, match="ks must be positive"):
        M.ranking_metrics(np.array([[1]]), off, items, ks=(0,))
    with pytest.raises(ValueError, match="topk must be"):
        M.hits(np.array([1, 2]), off, items)


# -- cross-check against a straightforward per-user implementation ---------------------------
def _reference(topk: np.ndarray, truth: list[list[int]], k: int) -> dict[str, float] | None:
    rel = set(truth)
    if not rel:
        return None
    seen: set[int] = set()
    gains = []
    for item in list(topk[:k]) + [-1] * max(0, k - len(topk)):
        gains.append(1.0 if item >= 0 and item in rel and item not in seen else 0.0)
        seen.add(int(item))
    n_hits = sum(gains)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    first = next((i for i, g in enumerate(gains) if g), None)
    return {
        "recall": n_hits / len(rel),
        "ndcg": dcg / idcg,
        "hit": float(n_hits > 0),
        "mrr": 0.0 if first is None else 1.0 / (first + 1),
        "precision": n_hits / k,
    }


@pytest.mark.parametrize("seed", range(5))
def test_ranking_metrics_match_per_user_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, width, n_items = 60, 12, 30
    topk = rng.integers(0, n_items, size=(n_users, width))
    topk[rng.random(topk.shape) < 0.15] = -1  # padding and repeats appear naturally
    truth = [list(rng.integers(0, n_items, size=rng.integers(0, 6))) for _ in range(n_users)]
    off, items = _truth(truth)
    ks = (1, 5, 12, 20)
    got_user = M.per_user_ranking_metrics(topk, off, items, ks=ks)
    got_mean = M.ranking_metrics(topk, off, items, ks=ks)
    for k in ks:
        refs = [_reference(topk[u], truth[u], k) for u in range(n_users)]
        for name in M.RANKING_METRICS:
            ref = np.array([np.nan if r is None else r[name] for r in refs])
            np.testing.assert_allclose(got_user[f"{name}@{k}"], ref, err_msg=f"{name}@{k}")
            assert got_mean[f"{name}@{k}"] == pytest.approx(np.nanmean(ref))


# -- stage recall --------------------------------------------------------------------------------
def test_stage_recall_micro_and_macro() -> None:
    c_off, c_items = ragged.from_lists([[1, 2, 3], [4], [8], []])
    t_off, t_items = _truth([[2, 5], [4, 6, 7], [], [1]])
    # found: u0 1/2, u1 1/3, u2 skipped, u3 0/1
    assert M.stage_recall(c_off, c_items, t_off, t_items) == pytest.approx(2 / 6)
    assert M.stage_recall(c_off, c_items, t_off, t_items, per_user=True) == pytest.approx(
        (0.5 + 1 / 3 + 0.0) / 3
    )


def test_stage_recall_ignores_padding_and_cross_row_items() -> None:
    # item 2 is in user 1's candidates, not user 0's; -1 padding is ignored
    c_off, c_items = ragged.from_lists([[-1, 0], [2, -1]])
    t_off, t_items = _truth([[2, 2], [2]])
    assert M.stage_recall(c_off, c_items, t_off, t_items) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="no user has a ground-truth item"):
        M.stage_recall(c_off, c_items, *_truth([[], []]))


# -- beyond accuracy ------------------------------------------------------------------------------
def test_coverage() -> None:
    assert M.coverage(np.array([[0, 1, -1], [1, 2, 3]]), 10) == pytest.approx(0.4)
    assert M.coverage(np.full((2, 2), -1), 5) == 0.0


def test_intra_list_diversity_known_answer() -> None:
    cats = np.array([0, 0, 1, -1, -1])
    top = np.array(
        [
            [0, 1, 2],  # cats 0,0,1: 3 pairs, 1 same -> 2/3
            [3, 4, -1],  # two unknown categories: distinct -> 1
            [0, -1, -1],  # one item: skipped
            [2, 2, 0],  # repeated item: 1 same pair of 3 -> 2/3
        ]
    )
    assert M.intra_list_diversity(top, cats) == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    with pytest.raises(ValueError, match="two or more items"):
        M.intra_list_diversity(np.array([[0, -1]]), cats)


def test_intra_list_diversity_matches_pairwise_loop() -> None:
    rng = np.random.default_rng(7)
    cats = rng.integers(-1, 4, size=40)
    top = rng.integers(-1, 40, size=(30, 8))
    values = []
    for row in top:
        its = [i for i in row if i >= 0]
        pairs = [(a, b) for x, a in enumerate(its) for b in its[x + 1 :]]
        if pairs:
            diff = [cats[a] < 0 or cats[b] < 0 or cats[a] != cats[b] for a, b in pairs]
            values.append(np.mean(diff))
    assert M.intra_list_diversity(top, cats) == pytest.approx(np.mean(values))


def test_novelty_known_answer() -> None:
    pop = np.array([10.0, 5.0, 0.0, 1.0])
    top = np.array([[0, 1], [2, -1]])
    # -log2(10/10)=0, -log2(5/10)=1, pop 0 clipped to 1 -> log2(10)
    assert M.novelty(top, pop, 10) == pytest.approx((0 + 1 + math.log2(10)) / 3)
    with pytest.raises(ValueError, match="no recommended item"):
        M.novelty(np.full((1, 2), -1), pop, 10)


def test_head_share_known_answer_with_ties() -> None:
    pop = np.array([10.0, 5.0, 5.0, 1.0, 0.0])
    top = np.array([[0, 1], [2, 4]])
    assert M.head_share(top, pop, 0.2) == pytest.approx(1 / 4)  # head = {0}
    assert M.head_share(top, pop, 0.4) == pytest.approx(3 / 4)  # head = {0, 1, 2} (tie)
    assert M.head_share(top, pop, 1.0) == 1.0
    with pytest.raises(ValueError, match="top_fraction"):
        M.head_share(top, pop, 0.0)


# -- classification ------------------------------------------------------------------------------
def test_auc_known_answer_with_ties() -> None:
    # pos {0.5, 0.8} vs neg {0.5, 0.1}: pairs 0.5 + 1 + 1 + 1 = 3.5 of 4
    assert M.auc([1, 0, 1, 0], [0.5, 0.5, 0.8, 0.1]) == pytest.approx(0.875)
    assert M.auc([0, 1], [0.3, 0.3]) == pytest.approx(0.5)
    assert M.auc([True, False], [0.0, 1.0]) == 0.0


def test_auc_errors() -> None:
    with pytest.raises(ValueError, match="both classes"):
        M.auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="binary"):
        M.auc([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        M.auc([1, 0], [np.nan, 0.2])


def test_auc_matches_sklearn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.integers(0, 2, size=500)
        s = np.round(rng.normal(size=500) + y, 1)  # rounding makes many ties
        assert M.auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))


def test_gauc_known_answer() -> None:
    # group 7: auc 0.875 over 4 impressions; group 3: auc 0 over 2; group 5: one class, skipped
    labels = [1, 1, 0, 1, 1, 0, 0, 1]
    scores = [0.5, 0.1, 0.5, 0.8, 0.3, 0.1, 0.9, 0.2]
    groups = [7, 3, 7, 7, 5, 7, 3, 5]
    assert M.gauc(labels, scores, groups) == pytest.approx((4 * 0.875 + 2 * 0.0) / 6)
    with pytest.raises(ValueError, match="at least one group"):
        M.gauc([1, 0], [0.1, 0.2], [0, 1])


def test_gauc_matches_per_group_loop() -> None:
    rng = np.random.default_rng(11)
    n = 2000
    groups = rng.integers(0, 80, size=n)
    y = rng.integers(0, 2, size=n)
    s = np.round(rng.random(n) + 0.3 * y, 1)
    num = den = 0.0
    for g in np.unique(groups):
        sel = groups == g
        if 0 < y[sel].sum() < sel.sum():
            num += M.auc(y[sel], s[sel]) * sel.sum()
            den += sel.sum()
    assert M.gauc(y, s, groups) == pytest.approx(num / den)


def test_logloss() -> None:
    assert M.logloss([1, 0], [0.9, 0.2]) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    # clipping: a confident mistake costs -ln(eps), also for float32 input
    probs = np.array([1.0, 0.0], dtype=np.float32)
    assert M.logloss([0, 0], probs) == pytest.approx(-math.log(1e-7) / 2, rel=1e-6)
    assert M.logloss([1, 0], [1.0, 0.0]) == pytest.approx(-math.log1p(-1e-7))
