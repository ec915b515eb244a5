"""``score_items``: a channel's score of any candidate (the stacking ranker's ``cs:`` feature)
agrees with what the channel retrieves, is 0 where the channel has no score, and does not
depend on the other queries in the batch."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.registry import RECALL
from funnelrec.train.examples import prefix_queries
from funnelrec.types import Candidates, Query

CHANNELS = {
    "itemcf": {},
    "usercf": {},
    "ease": {"l2": 50.0},
    "als": {"factors": 8, "iterations": 3, "threads": 1},
}


@pytest.fixture(scope="module", params=sorted(CHANNELS))
def fitted(request: pytest.FixtureRequest, world_split: Split) -> tuple[object, Query]:
    name = request.param
    channel = RECALL.create(name, CHANNELS[name]).fit(world_split.train)
    users = np.arange(12, dtype=np.int64)

    lens = ragged.lengths(world_split.train.sequences[0])[users]
    return channel, prefix_queries(world_split.train, users, lens)


def test_scores_of_retrieved_items_match_the_channels_own(fitted: tuple[object, Query]) -> None:
    channel, query = fitted
    cands = channel.retrieve(query, 30)  # type: ignore[attr-defined]
    got = channel.score_items(query, cands)  # type: ignore[attr-defined]
    assert got.shape == (len(cands),)
    np.testing.assert_allclose(got, np.nan_to_num(cands.scores), rtol=1e-4, atol=1e-5)


def test_unknown_items_score_zero_and_rows_are_batch_invariant(
    fitted: tuple[object, Query], world: Dataset
) -> None:
    channel, query = fitted
    n_items = world.n_items
    per_row = np.array([n_items + 5, 0, 1, 2], dtype=np.int64)  # first: outside the catalogue
    b = query.batch_size
    cands = Candidates.from_flat(
        np.arange(b + 1, dtype=np.int64) * len(per_row), np.tile(per_row, b),
        np.zeros(b * len(per_row)), "x",
    )  # fmt: skip
    batch = channel.score_items(query, cands)  # type: ignore[attr-defined]
    assert np.all(batch[:: len(per_row)] == 0.0)
    for i in (0, 5, b - 1):
        alone = Candidates.from_flat(
            np.array([0, len(per_row)], dtype=np.int64), per_row, np.zeros(len(per_row)), "x"
        )
        one = channel.score_items(query.select(np.array([i])), alone)  # type: ignore[attr-defined]
        np.testing.assert_allclose(one, batch[i * len(per_row) : (i + 1) * len(per_row)], atol=1e-5)


def test_scores_after_a_retrieval_equal_fresh_scores(fitted: tuple[object, Query]) -> None:
    """``score_items`` right after ``retrieve`` (the funnel's annotate step) may reuse the
    retrieval's matrix: the answer is the one computed from scratch, and a query with other
    inputs never gets the remembered matrix."""
    channel, query = fitted
    cands = channel.retrieve(query.without_exclusions(), 30)  # type: ignore[attr-defined]
    reused = channel.score_items(query, cands)  # type: ignore[attr-defined]
    fresh = channel.score_items(query, cands)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(reused, fresh)
    other = query.select(np.arange(query.batch_size)[::-1])
    channel.retrieve(other, 30)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(channel.score_items(query, cands), fresh)  # type: ignore[attr-defined]


def test_score_memo_hands_a_matrix_once_to_the_same_inputs() -> None:
    from funnelrec.recall.base import ScoreMemo

    q = Query.from_lists([0, 1], [[1, 2], [3]], k=2, exclude=[[1], []])
    memo = ScoreMemo()
    memo.put(q, "scores")
    assert memo.take(Query.from_lists([0, 1], [[1, 2], [3]], k=2)) is None  # equal, not same
    memo.put(q, "scores")
    assert memo.take(q.without_exclusions()) == "scores"
    assert memo.take(q) is None  # handed once


@pytest.mark.parametrize("grouped", [True, False])
def test_gather_scores_from_a_sparse_matrix(grouped: bool) -> None:
    import scipy.sparse as sp

    from funnelrec.recall.base import gather_scores

    mat = sp.csr_matrix(np.array([[0.0, 2.0, 0.0, 1.0], [3.0, 0.0, 0.0, 0.0]]))
    rows = np.array([0, 0, 0, 1, 1] if grouped else [1, 0, 0, 1, 0], dtype=np.int64)
    items = np.array([1, 2, 3, 0, 9], dtype=np.int64)  # 9: outside the matrix
    dense = np.pad(mat.toarray(), ((0, 0), (0, 6)))
    assert gather_scores(mat, rows, items).tolist() == dense[rows, items].tolist()
