"""Item-CF recall: known neighbour weights and rankings on a tiny dataset, sparse helpers,
and quality against ``popular`` on the synthetic world."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.eval.protocol import evaluate
from funnelrec.recall import _cooccurrence
from funnelrec.recall._cooccurrence import row_topn, sparse_topk
from funnelrec.recall.base import RecallChannel, top_entries, top_mask
from funnelrec.recall.itemcf import ItemCFRecall
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query

# user -> items in time order (timestamps 0, 10, 20, ...)
HISTORIES = {0: [0, 1, 2], 1: [0, 1, 3], 2: [1, 2, 4], 3: [0, 2]}
# forward pairs one step apart: 0→1 (u0, u1), 1→2 (u0, u2), 1→3 (u1), 2→4 (u2), 0→2 (u3)
PLAIN: dict[str, Any] = {
    "window": 1,
    "backward_weight": 0.0,
    "global_weight": 0.0,
    "user_weight": "none",
    "normalization": "none",
}


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    rows = [(u, i, 10.0 * t) for u, items in HISTORIES.items() for t, i in enumerate(items)]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    return Dataset.from_frame(frame, items=pl.DataFrame({"item_id": [0, 1, 2, 3, 4]}))


def graph(tiny: Dataset, **params: Any) -> np.ndarray[Any, Any]:
    """Dense ``[5, 5]`` neighbour weights of an itemcf fitted on ``tiny``."""
    model = ItemCFRecall(**{**PLAIN, **params}).fit(tiny)
    return np.asarray(model.similarity_.toarray(), dtype=np.float64)


def test_forward_pairs_are_counted(tiny: Dataset) -> None:
    expected = np.zeros((5, 5))
    expected[0, 1] = expected[1, 2] = 2
    expected[1, 3] = expected[2, 4] = expected[0, 2] = 1
    np.testing.assert_allclose(graph(tiny), expected)


def test_pairs_summed_in_several_flushes(tiny: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = graph(tiny, window=3, backward_weight=0.5, global_weight=1.0)
    monkeypatch.setattr(_cooccurrence, "MAX_PENDING", 2)
    np.testing.assert_allclose(
        graph(tiny, window=3, backward_weight=0.5, global_weight=1.0), expected, rtol=1e-6
    )


def test_backward_direction_and_position_decay(tiny: Dataset) -> None:
    s = graph(tiny, backward_weight=0.25)
    assert s[0, 1] == pytest.approx(2.0) and s[1, 0] == pytest.approx(0.5)
    s = graph(tiny, window=2, position_decay=0.5)
    # distance-2 pairs weigh 0.5: 0→2 (u0) on top of the adjacent 0→2 of u3, 0→3 (u1), 1→4 (u2)
    assert s[0, 2] == pytest.approx(1.5)
    assert s[0, 3] == pytest.approx(0.5) and s[1, 4] == pytest.approx(0.5)
    assert s[2, 0] == 0.0


def test_time_decay_between_events(tiny: Dataset) -> None:
    # adjacent events are 10 s apart: one half-life
    assert graph(tiny, time_half_life=10.0)[0, 1] == pytest.approx(1.0)


def test_inverse_user_frequency(tiny: Dataset) -> None:
    s = graph(tiny, user_weight="log")
    assert s[0, 1] == pytest.approx(2 / np.log(4))  # two users with 3 events
    assert s[0, 2] == pytest.approx(1 / np.log(3))  # user 3 has 2 events


def test_global_cooccurrence_is_symmetric_and_counts_all_pairs(tiny: Dataset) -> None:
    s = graph(tiny, forward_weight=0.0, global_weight=1.0)
    assert s[0, 1] == s[1, 0] == pytest.approx(2.0)  # users 0 and 1
    assert s[0, 2] == s[2, 0] == pytest.approx(2.0)  # users 0 and 3
    assert s[3, 4] == 0.0 and np.all(np.diag(s) == 0)


def test_normalisations_and_popularity_penalty(tiny: Dataset) -> None:
    # items 0, 1, 2 have 3 events each, items 3, 4 one
    assert graph(tiny, normalization="cosine", alpha=0.5)[1, 3] == pytest.approx(1 / np.sqrt(3))
    assert graph(tiny, normalization="cosine", alpha=1.0)[1, 3] == pytest.approx(1 / 3)
    assert graph(tiny, normalization="cosine", alpha=0.0)[1, 3] == pytest.approx(1.0)
    assert graph(tiny, normalization="jaccard")[0, 1] == pytest.approx(2 / (3 + 3 - 2))
    assert graph(tiny, pop_penalty=1.0)[0, 1] == pytest.approx(2 / 3)


def test_top_n_neighbours_are_kept(tiny: Dataset) -> None:
    s = graph(tiny, n_neighbours=1)
    assert s[1].nonzero()[0].tolist() == [2]  # 1→2 (weight 2) beats 1→3 (weight 1)
    assert (s > 0).sum(axis=1).max() == 1


def test_ranking_weighs_recent_items_more(tiny: Dataset) -> None:
    model = ItemCFRecall(**PLAIN, recency_decay=0.5).fit(tiny)
    # history [0, 1]: item 1 (latest) weighs 1, item 0 weighs 0.5
    # scores: 2 = 0.5 * 1 + 1 * 2 = 2.5, 1 = 0.5 * 2 = 1, 3 = 1 * 1 = 1
    q = Query.from_lists([0], [[0, 1]], k=5)
    items, scores = model.retrieve(q, 5).row(0)
    assert items.tolist() == [2, 1, 3]
    np.testing.assert_allclose(scores, [2.5, 1.0, 1.0])
    # exclusions are honoured; only the last `history_len` items count
    q = Query.from_lists([0], [[0, 1]], k=5, exclude=[[0, 1]])
    assert model.retrieve(q, 5).to_lists() == [[2, 3]]
    short = ItemCFRecall(**PLAIN, history_len=1).fit(tiny)
    assert short.retrieve(Query.from_lists([0], [[0, 1]], k=5), 5).to_lists() == [[2, 3]]


def test_history_floor_keeps_old_items(tiny: Dataset) -> None:
    model = ItemCFRecall(**PLAIN, recency_decay=0.5, history_floor=1.0).fit(tiny)
    items, scores = model.retrieve(Query.from_lists([0], [[0, 1]], k=5), 5).row(0)
    assert items.tolist() == [2, 1, 3]
    np.testing.assert_allclose(scores, [1.5 * 1 + 2 * 2, 1.5 * 2, 2 * 1])


def test_cold_and_new_users(tiny: Dataset) -> None:
    model = ItemCFRecall(**PLAIN).fit(tiny)
    q = Query.from_lists([-1, 99, 2], [[], [0, 77], [2]], k=3)
    assert model.retrieve(q, 3).to_lists() == [[], [1, 2], [4]]  # item 77 is unknown


@pytest.mark.parametrize("keep_ties", [False, True])
def test_top_mask_is_a_full_sort_with_ties_infinities_and_nans(keep_ties: bool) -> None:
    """The k best entries per row (ties at the cut: lowest columns, or all of them), never
    -inf or NaN; with or without NaNs in the matrix (two selection paths)."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        scores = rng.integers(-2, 4, (5, 12)).astype(np.float64)
        scores[scores == -2] = -np.inf
        scores[scores == 0] = -0.0 if trial % 2 else 0.0
        if trial % 3 == 0:
            scores[rng.random((5, 12)) < 0.2] = np.nan
        k = int(rng.integers(1, 13))
        got = top_mask(scores, k, keep_ties=keep_ties)
        for r, row in enumerate(scores):
            key = np.where(np.isnan(row), -np.inf, row)
            order = np.lexsort((np.arange(12), -key))  # best first, ties by column
            want = np.zeros(12, dtype=bool)
            want[order[:k]] = True
            if keep_ties and k < 12:
                want |= key >= key[order[k - 1]]
            want &= key > -np.inf
            assert got[r].tolist() == want.tolist(), (trial, r, k)


def test_row_topn_matches_a_full_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cooccurrence, "MAX_CELLS", 64)  # many small blocks
    mat = sp.random(40, 300, density=0.2, random_state=1, format="csr") * 10
    mat.data -= 1.0  # some negative entries, never kept
    top = row_topn(mat, 7).toarray()
    dense = mat.toarray()
    for r in range(40):
        positive = np.sort(dense[r][dense[r] > 0])[::-1][:7]
        np.testing.assert_allclose(np.sort(top[r][top[r] > 0])[::-1], positive)
    assert (top > 0).sum(axis=1).max() <= 7
    owned = row_topn(sp.csr_matrix(mat, copy=True), 7, copy=False)  # reuses its input
    assert owned.has_sorted_indices
    np.testing.assert_array_equal(owned.toarray(), top)


@pytest.mark.parametrize("ties", ["lowest", "keep"])
def test_row_topn_ties_depend_on_the_row_alone(ties: str) -> None:
    """Rows tied at the cut, cut together with rows of other lengths (other padded block
    widths) and alone: ``"lowest"`` keeps the lowest tied columns, ``"keep"`` all of them;
    each row's answer is the same in any company (``"any"`` gives no such promise)."""
    rng = np.random.default_rng(0)
    rows = []
    for length in (12, 20, 31, 45, 60, 63):  # one bucket (widths 33..64) and a shorter one
        cols = np.sort(rng.choice(200, size=length, replace=False))
        vals = np.where(np.arange(length) % 3 == 0, 5.0, rng.integers(1, 4, size=length) / 2)
        rows.append((cols, vals))
    mat = sp.lil_matrix((len(rows), 200))
    for r, (cols, vals) in enumerate(rows):
        mat[r, cols] = vals
    mat = sp.csr_matrix(mat)
    together = row_topn(mat, 5, ties=ties).toarray()  # type: ignore[arg-type]
    for r, (cols, vals) in enumerate(rows):
        alone = row_topn(mat[r], 5, ties=ties).toarray()[0]  # type: ignore[arg-type]
        np.testing.assert_array_equal(together[r], alone)
        kth = np.sort(vals)[::-1][4]
        above, tied = cols[vals > kth], cols[vals == kth]
        expected = set(above) | set(tied if ties == "keep" else tied[: 5 - len(above)])
        assert set(np.flatnonzero(alone)) == expected


def test_sparse_topk_sorts_and_excludes() -> None:
    scores = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]]))
    q = Query.from_lists([0, 1], [[], []], k=3, exclude=[[1], []])
    c = sparse_topk(scores, q, 3, "itemcf")
    assert c.to_lists() == [[3, 2, 4], []]
    np.testing.assert_allclose(c.scores, [2.0, 1.0, 0.5])
    assert c.channels == ("itemcf",)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dense", [True, False])
def test_sparse_topk_paths_agree(dense: bool, tied: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense path (small batches) and the sparse one return the same lists: positive,
    non-excluded entries only, best first, ties (at the cut too) by ascending item."""
    if not dense:
        monkeypatch.setattr(ragged, "DENSE_MAX", 0)
    mat = sp.random(6, 80, density=0.3, random_state=2, format="csr")
    mat.data -= 0.2  # some negative entries, never returned
    if tied:
        mat.data = np.round(mat.data * 4) / 4  # a handful of distinct values: many ties
    q = Query.from_lists(list(range(6)), [[]] * 6, k=5, exclude=[[1, 2, 3]] * 3 + [[]] * 3)
    got = sparse_topk(mat, q, 9, "itemcf")
    arr = mat.toarray()
    for b in range(6):
        ok = [i for i in np.argsort(-arr[b], kind="stable") if arr[b, i] > 0]
        ok = [int(i) for i in ok if b >= 3 or i not in (1, 2, 3)][:9]
        assert got.row(b)[0].tolist() == ok


def test_top_entries_breaks_ties_by_item_at_the_cut() -> None:
    """A row's answer never depends on the rest of the batch: tied entries at the cut keep
    the lowest items, ``-inf`` is never returned, ``k`` above the width is fine."""
    scores = np.array([[1.0, 3.0, 3.0, 3.0, -np.inf], [2.0, -np.inf, -np.inf, -np.inf, 5.0]])
    c = top_entries(scores, 2, "x")
    assert c.to_lists() == [[1, 2], [4, 0]]
    assert top_entries(scores, 9, "x").to_lists() == [[1, 2, 3, 0], [4, 0]]
    alone = top_entries(scores[:1], 2, "x")
    assert alone.to_lists() == c.to_lists()[:1]


def test_beats_popular_on_the_synthetic_world(world_split: Split) -> None:
    ndcg = {}
    for name in ("popular", "itemcf"):
        model = RECALL.create(name).fit(world_split.train)

        def recommend(q: Query, m: RecallChannel[Any] = model) -> Candidates:
            return m.retrieve(q, q.k)

        ndcg[name] = evaluate(recommend, world_split, ks=(10,)).metrics["ndcg@10"]
    assert ndcg["itemcf"] > 1.2 * ndcg["popular"], ndcg


def test_window_pairs_known_answer() -> None:
    """Rows [a b c] and [d e]: pairs at most 2 apart, grouped by distance."""
    from funnelrec.recall._cooccurrence import window_pairs

    early, dist = window_pairs(np.array([0, 3, 5]), 2)
    assert early.tolist() == [0, 1, 3, 0]
    assert dist.tolist() == [1, 1, 1, 2]


def test_forward_backward_weights_known_answer() -> None:
    """One user a → b → c, window 2, no normalisation: S[a, b] = fw, S[b, a] = bw,
    S[a, c] = fw · decay, S[c, a] = bw · decay."""
    data = Dataset.from_frame(
        pl.DataFrame({"user_id": [1, 1, 1], "item_id": [10, 20, 30], "timestamp": [1, 2, 3]})
    )
    model = ItemCFRecall(
        window=2, position_decay=0.5, forward_weight=1.0, backward_weight=0.25,
        global_weight=0.0, user_weight="none", normalization="none",
    ).fit(data)  # fmt: skip
    sim = model.similarity_.toarray()
    a, b, c = data.item_ids.lookup([10, 20, 30]).tolist()
    assert sim[a, b] == pytest.approx(1.0) and sim[b, a] == pytest.approx(0.25)
    assert sim[a, c] == pytest.approx(0.5) and sim[c, a] == pytest.approx(0.125)
    assert sim[b, c] == pytest.approx(1.0) and sim[c, b] == pytest.approx(0.25)


@pytest.mark.parametrize("params", [
    {}, {"backward_weight": 0.0}, {"forward_weight": 0.0}, {"global_weight": 0.0},
    {"normalization": "jaccard", "pop_penalty": 0.3},
])  # fmt: skip
@pytest.mark.parametrize("threads", [1, 2])
def test_graph_built_in_row_blocks_is_bit_identical(
    world_split: Split, params: dict[str, Any], threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fit`` sums pairs and assembles, normalises and prunes the graph in blocks of source
    items (memory), one block per thread: many blocks, with folds in between, on one thread
    or two, give exactly the one-block graph."""
    from funnelrec import threads as thread_setting
    from funnelrec.recall import itemcf

    whole = ItemCFRecall(**params).fit(world_split.train).similarity_
    monkeypatch.setattr(thread_setting, "_applied", threads)
    monkeypatch.setattr(itemcf, "BLOCK_PAIRS", 20_000)
    monkeypatch.setattr(_cooccurrence, "MAX_PENDING", 5_000)
    events = np.bincount(world_split.train.sequences[1])
    assert len(ItemCFRecall(**params)._blocks(events, None, 20_000)) > 4
    blocked = ItemCFRecall(**params).fit(world_split.train).similarity_
    assert whole.dtype == blocked.dtype and whole.shape == blocked.shape
    assert np.array_equal(whole.indptr, blocked.indptr)
    assert np.array_equal(whole.indices, blocked.indices)
    assert np.array_equal(whole.data, blocked.data)
