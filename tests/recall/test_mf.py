"""MF recall: beats popular on the synthetic world; users it never saw get empty rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from funnelrec.data.splits import Split
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.mf import MFRecall
from funnelrec.recall.popular import PopularRecall
from funnelrec.types import Query

FAST: dict[str, Any] = {"dim": 32, "lr": 0.01, "batch_size": 256, "epochs": 15, "threads": 1}


def ndcg(channel: object, split: Split) -> float:
    result = evaluate(lambda q: channel.retrieve(q, q.k), split, ks=(10,))  # type: ignore[attr-defined]
    return result.metrics["ndcg@10"]


@pytest.fixture(scope="module")
def softmax_mf(world_split: Split) -> MFRecall:
    return MFRecall(loss="softmax", **FAST).fit(world_split.train)


def test_mf_softmax_beats_popular(world_split: Split, softmax_mf: MFRecall) -> None:
    popular = ndcg(PopularRecall().fit(world_split.train), world_split)
    assert ndcg(softmax_mf, world_split) > popular + 0.01
    log = softmax_mf.fit_log_
    assert 1 <= log["best_epoch"] <= log["epochs_run"] <= FAST["epochs"]


def test_mf_bpr_learns(world_split: Split) -> None:
    bpr = MFRecall(**{**FAST, "lr": 0.005, "epochs": 8, "early_stop": False}).fit(world_split.train)
    assert bpr.fit_log_["epochs_run"] == 8
    assert ndcg(bpr, world_split) > 0.1


def test_refit_trains_on_everything_for_best_epochs(world_split: Split) -> None:
    mf = MFRecall(**{**FAST, "epochs": 4, "refit": True}).fit(world_split.train)
    assert mf.fit_log_["epochs_run"] <= 4
    assert mf.fit_log_["refit"] and mf.sizes_["n_users"] == world_split.train.n_users


def test_default_refits_on_the_last_interactions(world_split: Split) -> None:
    """Issue #24: without the refit the user vectors never saw each user's last item."""
    mf = MFRecall(**{**FAST, "epochs": 2}).fit(world_split.train)
    assert mf.params.refit and mf.fit_log_["refit"]


def test_default_regularises_the_touched_rows(world_split: Split) -> None:
    """Issue #24: implicit's BPR shrinks every row a step touches; the old default (``l2`` 0)
    left nothing to bound the BPR vectors, whose norms then only grow."""
    common = {**FAST, "epochs": 15, "early_stop": False}
    default = MFRecall(**common).fit(world_split.train)
    free = MFRecall(**{**common, "l2": 0.0}).fit(world_split.train)

    def norm(mf: MFRecall) -> float:
        vecs = mf.item_vectors(np.arange(world_split.train.n_items))
        return float(np.linalg.norm(vecs, axis=1).mean())

    assert default.params.l2 > 0
    assert norm(default) < 0.95 * norm(free)
    assert ndcg(default, world_split) > 0.1


def test_default_patience_outlasts_a_noisy_plateau() -> None:
    """Issue #24: with patience 5 most ml-100k runs stopped in their first plateau."""
    assert MFRecall().params.patience >= 10


def test_unknown_users_get_empty_rows(softmax_mf: MFRecall) -> None:
    q = Query.from_lists([0, -1, 10**6], [[1, 2], [1, 2], []], k=5)
    lens = softmax_mf.retrieve(q, 5).lengths()
    np.testing.assert_array_equal(lens, [5, 0, 0])


def test_index_kinds_agree(world_split: Split, softmax_mf: MFRecall) -> None:
    hnsw = MFRecall(loss="softmax", index="hnsw", **FAST).fit(world_split.train)
    q = world_split.test_query(world_split.test_users()[:30], 10)
    exact, approx = softmax_mf.retrieve(q, 10), hnsw.retrieve(q, 10)
    overlap = np.mean(
        [
            len(set(a) & set(b)) / 10
            for a, b in zip(exact.to_lists(), approx.to_lists(), strict=True)
        ]
    )
    assert overlap > 0.9
