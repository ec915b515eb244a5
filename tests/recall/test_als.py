"""ALS recall: the fold-in is the closed-form solve; events change the answer; beats popular."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from funnelrec.data.splits import Split
from funnelrec.errors import ConfigError
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.als import ALSRecall, interaction_counts
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import RECALL
from funnelrec.types import Query


@pytest.fixture(scope="module")
def als(world_split: Split) -> ALSRecall:
    return ALSRecall(factors=16, iterations=8, regularization=1.0, alpha=5.0, threads=1).fit(
        world_split.train
    )


def closed_form(item_factors: np.ndarray, row: sp.csr_matrix, reg: float) -> np.ndarray:
    """``(YᵀY + λI + Σ (c_i - 1) y_i y_iᵀ)⁻¹ Σ c_i y_i`` in float64 (Hu et al., 2008)."""
    y = item_factors.astype(np.float64)
    items, conf = row.indices, row.data.astype(np.float64)
    a = y.T @ y + reg * np.eye(y.shape[1])
    a += (y[items].T * (conf - 1.0)) @ y[items]
    return np.linalg.solve(a, (y[items] * conf[:, None]).sum(axis=0))


def test_fold_in_is_the_closed_form_and_implicits_recalculate_user(
    als: ALSRecall, world_split: Split
) -> None:
    counts = interaction_counts(world_split.train)[:5]
    got = als.fold_in(counts)
    values = als._values(counts) * als.params.alpha
    for u in range(5):
        expected = closed_form(als.item_factors_, values[u], als.params.regularization)
        np.testing.assert_allclose(got[u], expected, rtol=1e-3, atol=1e-4)
    reference = als.model_.recalculate_user(np.arange(5), als._values(counts))
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_events_change_the_answer_and_rows_are_independent(als: ALSRecall) -> None:
    before = Query.from_lists([0, -1], [[1, 2, 3], [4, 5]], k=10)
    after = Query.from_lists([0, -1], [[1, 2, 3, 40, 41, 42], [4, 5]], k=10)
    a, b = als.retrieve(before, 10), als.retrieve(after, 10)
    assert a.to_lists()[0] != b.to_lists()[0], "new events must change the user's list"
    assert a.to_lists()[1] == b.to_lists()[1], "another row must not change"
    assert len(a.to_lists()[1]) == 10, "an unknown user with a history is served by fold-in"


def test_known_user_without_history_uses_fitted_factors(als: ALSRecall, world_split: Split) -> None:
    q = Query.from_lists([3, -1], [[], []], k=5)
    got = als.retrieve(q, 5)
    np.testing.assert_array_equal(got.lengths(), [5, 0])
    scores = als.item_factors_ @ als.user_factors_[3]
    scores[world_split.train.item_popularity == 0] = -np.inf
    assert got.item_idx[0] == int(np.argmax(scores))


def test_beats_popular(als: ALSRecall, world_split: Split) -> None:
    def ndcg(channel: object) -> float:
        res = evaluate(lambda q: channel.retrieve(q, q.k), world_split, ks=(10,))  # type: ignore[attr-defined]
        return float(res.metrics["ndcg@10"])

    assert ndcg(als) > ndcg(PopularRecall().fit(world_split.train)) + 0.01


def test_save_load_keeps_fold_in(als: ALSRecall, tmp_path: Path) -> None:
    als.save(tmp_path / "als")
    loaded = RECALL.load(tmp_path / "als")
    q = Query.from_lists([-1], [[7, 8, 9]], k=10)
    np.testing.assert_array_equal(als.retrieve(q, 10).item_idx, loaded.retrieve(q, 10).item_idx)


def test_bad_params_rejected() -> None:
    with pytest.raises(ConfigError, match="factors"):
        RECALL.create("als", {"factors": 0})
    with pytest.raises(ConfigError, match="unknown key 'rank'"):
        RECALL.create("als", {"rank": 8})
