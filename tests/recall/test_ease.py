"""EASE recall: known answer on a tiny matrix, history-driven scores, catalogue-size limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.errors import DataError
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.ease import EASERecall
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import RECALL
from funnelrec.types import Query

TINY = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]])


def tiny_dataset() -> Dataset:
    users, items = np.nonzero(TINY)
    frame = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": np.arange(len(users), dtype=float)}
    )
    return Dataset.from_frame(frame)


def numpy_ease(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck (2019), eq. 8: ``B = I - P diagMat(1 ⊘ diag(P))``, ``P = (XᵀX + λI)⁻¹``."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p @ np.diag(1.0 / np.diag(p))


def test_known_answer_on_a_tiny_matrix() -> None:
    data = tiny_dataset()
    ease = EASERecall(l2=0.5, threads=1).fit(data)
    x = data.user_item.toarray()
    expected = numpy_ease(x, 0.5)
    np.testing.assert_allclose(ease.weights_, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(ease.weights_) == 0)
    q = Query.from_lists([-1], [[0, 0, 1]], k=4)
    scores = ease.scores(q)[0]
    np.testing.assert_allclose(scores, (expected[0] + expected[1]).astype(np.float32), rtol=1e-5)
    got = ease.retrieve(Query.from_lists([-1], [[0, 1]], k=4, exclude=[[0, 1]]), 4)
    want = np.argsort(-(expected[0] + expected[1])[2:])[:2] + 2
    np.testing.assert_array_equal(got.item_idx, want)


def test_catalogue_limit_error_and_most_popular_variant() -> None:
    data = tiny_dataset()
    with pytest.raises(DataError, match="4 items with interactions, more than max_items=3"):
        EASERecall(max_items=3).fit(data)
    ease = EASERecall(max_items=3, large="most_popular", threads=1).fit(data)
    least = int(np.argmin(data.item_popularity))
    assert least not in ease.items_ and len(ease.items_) == 3
    got = ease.retrieve(Query.from_lists([-1], [[0]], k=4, exclude=[[0]]), 4)
    assert least not in got.item_idx and len(got.item_idx) == 2


def test_top_n_pruning_keeps_the_largest_weights(world_split: Split) -> None:
    dense = EASERecall(l2=50.0, threads=1).fit(world_split.train)
    pruned = EASERecall(l2=50.0, top_n=5, threads=1).fit(world_split.train)
    w = pruned.weights_.toarray()
    assert np.all((w != 0).sum(axis=1) <= 5)
    row = dense.weights_[0]
    np.testing.assert_allclose(np.sort(w[0][w[0] != 0]), np.sort(row)[-5:], rtol=1e-6)


def test_beats_popular_and_events_change_the_answer(world_split: Split, tmp_path: Path) -> None:
    ease = EASERecall(l2=50.0, threads=1).fit(world_split.train)

    def ndcg(channel: object) -> float:
        res = evaluate(lambda q: channel.retrieve(q, q.k), world_split, ks=(10,))  # type: ignore[attr-defined]
        return float(res.metrics["ndcg@10"])

    assert ndcg(ease) > ndcg(PopularRecall().fit(world_split.train)) + 0.01
    a = ease.retrieve(Query.from_lists([0, 1], [[1, 2], [3]], k=10), 10).to_lists()
    b = ease.retrieve(Query.from_lists([0, 1], [[1, 2, 30], [3]], k=10), 10).to_lists()
    assert a[0] != b[0] and a[1] == b[1]
    ease.save(tmp_path / "ease")
    again = RECALL.load(tmp_path / "ease").retrieve(Query.from_lists([0], [[1, 2, 30]], k=10), 10)
    assert again.to_lists()[0] == b[0]
