"""User-CF recall: known similarities and rankings on a tiny dataset, cold/new users, and
quality against ``popular`` on the synthetic world."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.base import RecallChannel
from funnelrec.recall.usercf import UserCFRecall
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query

# users 0..3 over items 0..4; items 0, 1, 2 have three users each, items 3 and 4 one
HISTORIES = {0: [0, 1, 2], 1: [0, 1, 3], 2: [1, 2, 4], 3: [0, 2]}
# cosine of user 3 ({0, 2}) with user 0 ({0, 1, 2}) and with users 1 and 2 (one shared item)
SIM_30 = 2 / np.sqrt(2 * 3)
SIM_31 = 1 / np.sqrt(2 * 3)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    rows = [(u, i, float(t)) for u, items in HISTORIES.items() for t, i in enumerate(items)]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    return Dataset.from_frame(frame, items=pl.DataFrame({"item_id": [0, 1, 2, 3, 4]}))


def plain(**params: Any) -> UserCFRecall:
    return UserCFRecall(item_weight="none", recency_decay=1.0, **params)


def test_neighbours_vote_with_their_similarity(tiny: Dataset) -> None:
    model = plain(n_neighbours=3).fit(tiny)
    q = Query.from_lists([3], [[0, 2]], k=5, exclude=[[0, 2]])
    items, scores = model.retrieve(q, 5).row(0)
    # item 1: users 0, 1, 2; item 3: user 1; item 4: user 2 (tie kept in item order)
    assert items.tolist() == [1, 3, 4]
    np.testing.assert_allclose(scores, [SIM_30 + 2 * SIM_31, SIM_31, SIM_31], rtol=1e-6)


def test_only_the_nearest_neighbours_vote(tiny: Dataset) -> None:
    model = plain(n_neighbours=1).fit(tiny)
    q = Query.from_lists([3], [[0, 2]], k=5, exclude=[[0, 2]])
    items, scores = model.retrieve(q, 5).row(0)
    assert items.tolist() == [1]  # user 0 only
    np.testing.assert_allclose(scores, [SIM_30], rtol=1e-6)
    powered = plain(n_neighbours=1, sim_power=2.0).fit(tiny).retrieve(q, 5)
    np.testing.assert_allclose(powered.scores, [SIM_30**2], rtol=1e-6)


def test_a_user_is_not_their_own_neighbour(tiny: Dataset) -> None:
    model = plain(n_neighbours=1).fit(tiny)
    # user 0's own row would be the perfect match; the nearest other user is user 3 ({0, 2}:
    # cosine 0.82, against 0.67 for users 1 and 2)
    c = model.retrieve(Query.from_lists([0], [[0, 1, 2]], k=5), 5)
    assert c.to_lists() == [[0, 2]]
    np.testing.assert_allclose(c.scores, [SIM_30, SIM_30], rtol=1e-6)


def test_unknown_users_are_scored_from_their_query_history(tiny: Dataset) -> None:
    model = plain(n_neighbours=4).fit(tiny)
    # an unknown user with user 3's history: user 3 is now a neighbour too (similarity 1),
    # but only votes for the excluded items 0 and 2
    q = Query.from_lists([-1, 17, -1], [[0, 2], [0, 2], []], k=5, exclude=[[0, 2], [0, 2], []])
    c = model.retrieve(q, 5)
    assert c.to_lists() == [[1, 3, 4], [1, 3, 4], []]
    np.testing.assert_allclose(c.row(0)[1], [SIM_30 + 2 * SIM_31, SIM_31, SIM_31], rtol=1e-6)


def test_new_events_in_the_query_count(tiny: Dataset) -> None:
    model = plain(n_neighbours=1).fit(tiny)
    # user 3 just consumed item 4: user 2 ({1, 2, 4}) now shares two items, like user 0
    q = Query.from_lists([3], [[0, 2, 4]], k=5, exclude=[[0, 2, 4]])
    assert model.retrieve(q, 5).to_lists() == [[1]]
    q = Query.from_lists([3], [[4]], k=5, exclude=[[4]])
    assert model.retrieve(q, 5).to_lists() == [[1, 2]]  # user 2 only


def test_inverse_item_frequency_and_recency(tiny: Dataset) -> None:
    model = UserCFRecall(n_neighbours=4, recency_decay=1.0, item_weight="log").fit(tiny)
    q = Query.from_lists([3], [[0, 2]], k=5, exclude=[[0, 2]])
    items, scores = model.retrieve(q, 5).row(0)
    a, b = 1 / np.log(4), 1 / np.log(2)  # weights of items with 3 users and with 1 user
    sim_31 = (a * a) / (np.sqrt(2) * a * np.sqrt(2 * a * a + b * b))  # shares item 0
    assert items[1:].tolist() == [3, 4]
    np.testing.assert_allclose(scores[1:], [sim_31, sim_31], rtol=1e-5)
    # recency: with a strong decay, the latest item decides who is similar
    recent = UserCFRecall(n_neighbours=1, recency_decay=0.01, item_weight="none").fit(tiny)
    q = Query.from_lists([-1], [[1, 3]], k=5, exclude=[[1, 3]])
    assert recent.retrieve(q, 5).to_lists() == [[0]]  # user 1, the only one with item 3


def test_pop_penalty_favours_rare_items(tiny: Dataset) -> None:
    model = plain(n_neighbours=3, pop_penalty=1.0).fit(tiny)
    q = Query.from_lists([3], [[0, 2]], k=5, exclude=[[0, 2]])
    items, scores = model.retrieve(q, 5).row(0)
    np.testing.assert_allclose(scores, [SIM_30 / 3 + 2 * SIM_31 / 3, SIM_31, SIM_31], rtol=1e-6)
    assert items.tolist() == [1, 3, 4]


def test_beats_popular_on_the_synthetic_world(world_split: Split) -> None:
    ndcg = {}
    for name in ("popular", "usercf"):
        model = RECALL.create(name).fit(world_split.train)

        def recommend(q: Query, m: RecallChannel[Any] = model) -> Candidates:
            return m.retrieve(q, q.k)

        ndcg[name] = evaluate(recommend, world_split, ks=(10,)).metrics["ndcg@10"]
    assert ndcg["usercf"] > 1.1 * ndcg["popular"], ndcg


def test_dense_and_sparse_paths_agree(world_split: Split) -> None:
    import funnelrec.recall.usercf as usercf

    channel = usercf.UserCFRecall().fit(world_split.train)
    query = world_split.test_query(world_split.test_users()[:40], 10)
    dense = channel.retrieve(query, 30)
    old = usercf.DENSE_CELLS
    try:
        usercf.DENSE_CELLS = 0
        sparse = channel.retrieve(query, 30)
    finally:
        usercf.DENSE_CELLS = old
    for b in range(query.batch_size):
        d_items, d_scores = dense.row(b)
        s_items, s_scores = sparse.row(b)
        np.testing.assert_allclose(d_scores, s_scores, rtol=1e-5)
        assert set(d_items[d_scores > d_scores.min()]) == set(s_items[s_scores > s_scores.min()])


def test_neighbours_tied_at_the_cut_all_vote_in_any_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users 1..9 each share two of user 0's three items (all tied, cosine 2/3) and one item
    of their own; with ``n_neighbours=3`` every tied neighbour votes, whether the batch takes
    the dense path (alone) or the sparse one (with batch mates). The sparse path once kept
    three of them, which ones depending on the batch."""
    import funnelrec.recall.usercf as usercf

    histories = {0: [0, 1, 2], **{u: [0, 1, 10 + u] for u in range(1, 10)}}
    histories.update({u: [3, 4, 5, 20 + u] for u in range(10, 16)})  # other users, longer
    rows = [(u, i, float(t)) for u, items in histories.items() for t, i in enumerate(items)]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    data = Dataset.from_frame(frame)
    model = plain(n_neighbours=3).fit(data)
    offsets, items, _ = data.sequences
    histories_idx = [items[offsets[u] : offsets[u + 1]].tolist() for u in range(data.n_users)]
    query = Query.from_lists(list(range(data.n_users)), histories_idx, k=20)
    width = max(data.n_users, data.n_items)
    monkeypatch.setattr(usercf, "DENSE_CELLS", 2 * width)  # one or two rows: dense
    together = model.retrieve(query, 20)
    for b in range(query.batch_size):
        alone = model.retrieve(query.select(np.array([b])), 20)
        np.testing.assert_array_equal(together.row(b)[0], alone.row(0)[0])
        np.testing.assert_allclose(together.row(b)[1], alone.row(0)[1], rtol=1e-6)
    own = data.item_ids.lookup([10 + u for u in range(1, 10)])
    assert set(own.tolist()) <= set(together.row(data.user_ids.index(0))[0].tolist())
