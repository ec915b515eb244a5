"""Multi-interest recall: quota merge, clustering, interest coverage, provenance."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.eval.interests import interest_metrics, interest_report
from funnelrec.models.sequence import MIND, ComiRecSA
from funnelrec.models.sequence.pooling import cluster
from funnelrec.recall._interests import merge_interests
from funnelrec.registry import RECALL
from funnelrec.types import Query

SOURCE: dict[str, Any] = {"dim": 16, "epochs": 10, "lr": 0.01, "threads": 1}


def test_quota_merge_round_robin_dedup_and_invalid_interests() -> None:
    ids = np.array([[[1, 2, 3, 4], [2, 5, 6, 7], [8, 9, 10, 11]]])
    scores = np.array([[[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2], [9.0, 9.0, 9.0, 9.0]]])
    valid = np.array([[True, True, False]])
    items, out, interest, rank = merge_interests(ids, scores.astype(np.float32), valid, 4)
    # item 2 is kept where it ranks best (interest 1, rank 0); the invalid interest is unused
    assert items.tolist() == [[1, 2, 3, 5]]
    assert interest.tolist() == [[0, 1, 0, 1]]
    assert rank.tolist() == [[0, 0, 1, 1]]
    assert np.all(np.diff(out[0]) <= 0)
    by_score, s, _, _ = merge_interests(ids, scores.astype(np.float32), valid, 4, "score")
    assert by_score.tolist() == [[1, 3, 4, 2]] and s[0, 0] == np.float32(0.9)


def test_cluster_separates_interests_and_drops_empty_ones() -> None:
    a, b = [1.0, 0.0], [0.0, 1.0]
    vecs = torch.tensor([[a, a, b, a, b], [a, a, a, a, a]])
    mask = torch.tensor([[True] * 5, [False, True, True, True, True]])
    centroids, counts = cluster(vecs, mask, n_clusters=2)
    assert sorted(counts[0].tolist()) == [2.0, 3.0]
    assert sorted(counts[1].tolist()) == [0.0, 4.0]
    got = {tuple(c) for c in centroids[0].round().tolist()}
    assert got == {(1.0, 0.0), (0.0, 1.0)}


def test_multi_interest_models_output_one_vector_per_interest() -> None:
    seq = torch.tensor([[0, 3, 4, 5], [1, 2, 3, 4]])
    for model in (MIND(10, 8, 4, n_interests=3), ComiRecSA(10, 8, 4, n_interests=3)):
        assert model.eval().encode(seq).shape == (2, 3, 8)


def test_interest_metrics_known_answer() -> None:
    cats = np.array([0, 0, 0, 0, 1, 2])  # item -> category
    pop = np.ones(6)
    history = (np.array([0, 6]), np.array([0, 1, 2, 3, 0, 4]))  # 5/6 cat 0, 1/6 cat 1
    truth = (np.array([0, 1]), np.array([4]))  # test item in the minority category 1
    topk = np.array([[4, 1, -1]])
    m = interest_metrics(topk, history, truth, cats, pop, k=3)
    assert m["hist_cat_cover@3"] == 1.0 and m["test_cat_hit@3"] == 1.0
    assert m["minority_users"] == 1.0 and m["minority_recall@3"] == 1.0
    m = interest_metrics(np.array([[1, 2, 3]]), history, truth, cats, pop, k=3)
    assert m["hist_cat_cover@3"] == 0.5 and m["minority_recall@3"] == 0.0


def two_interest_world(n_users: int = 300, n_cats: int = 5, per_cat: int = 40) -> Dataset:
    """Every user: 24 events in a major category and 6 in a minor one, in random order."""
    rng = np.random.default_rng(0)
    major = rng.integers(0, n_cats, n_users)
    minor = (major + rng.integers(1, n_cats, n_users)) % n_cats
    cat = np.where(np.arange(30)[None, :] < 6, minor[:, None], major[:, None])
    item = rng.permuted(cat, axis=1) * per_cat + rng.integers(0, per_cat, cat.shape)
    frame = pl.DataFrame(
        {
            "user_id": np.repeat(np.arange(n_users), 30),
            "item_id": item.ravel(),
            "timestamp": np.tile(np.arange(30), n_users).astype(float),
        }
    )
    ids = np.arange(n_cats * per_cat)
    items = pl.DataFrame({"item_id": ids, "category": [f"c{c}" for c in ids // per_cat]})
    return Dataset.from_frame(frame, items=items)


@pytest.fixture(scope="module")
def two_interests() -> Split:
    return split(two_interest_world(), "loo")


@pytest.fixture(scope="module")
def clustered(two_interests: Split) -> dict[int, Any]:
    return {
        k: RECALL.create(
            "cluster_interest", {"source_params": SOURCE, "n_interests": k, "max_len": 30}
        ).fit(two_interests.train)
        for k in (1, 2)
    }


def test_multi_interest_covers_the_minority_interest(
    clustered: dict[int, Any], two_interests: Split
) -> None:
    single, multi = (
        interest_report(lambda q, c=c: c.retrieve(q, q.k), two_interests, k=20)
        for c in (clustered[1], clustered[2])
    )
    # one pooled vector serves the major category only; two interests serve both
    assert single["hist_cat_cover@20"] < 0.7 and multi["hist_cat_cover@20"] > 0.95
    assert multi["minority_recall@20"] > single["minority_recall@20"] + 0.1


def test_reasons_name_the_interest_that_found_each_item(
    clustered: dict[int, Any], two_interests: Split
) -> None:
    query = two_interests.test_query(two_interests.test_users()[:5], 20)
    cands = clustered[2].retrieve(query, 20)
    assert cands.reasons is not None and len(cands.reasons) == len(cands)
    cats = two_interests.train.item_categories[0]
    for row in range(5):
        lo, hi = cands.offsets[row], cands.offsets[row + 1]
        found = np.array([str(r).split(" #")[0][-3:] for r in cands.reasons[lo:hi]])
        assert set(found) == {"1/2", "2/2"}
        # each interest found items of one category: the reason tells which interest
        for label in ("1/2", "2/2"):
            assert len(set(cats[cands.item_idx[lo:hi][found == label]])) == 1


def test_interests_follow_new_events(clustered: dict[int, Any], two_interests: Split) -> None:
    user = int(two_interests.test_users()[0])
    history = two_interests.train.query(np.array([user]), 10).history(0).tolist()
    cats = two_interests.train.item_categories[0]
    fresh = next(c for c in range(5) if c not in set(cats[history]))
    new = np.flatnonzero(cats == fresh)[:10].tolist()  # events of a new kind arrive
    before = clustered[2].retrieve(Query.from_lists([user], [history], k=20), 20)
    after = clustered[2].retrieve(Query.from_lists([user], [history + new], k=20), 20)
    assert fresh not in set(cats[before.item_idx]) and fresh in set(cats[after.item_idx])


def test_funnel_trace_shows_the_interest_behind_each_item(two_interests: Split) -> None:
    from funnelrec.config import parse_config
    from funnelrec.pipeline import Funnel

    config = {
        "k": 5,
        "recall": {
            "total": 30,
            "channels": [
                {"name": "cluster_interest", "quota": 20,
                 "params": {"source_params": SOURCE, "n_interests": 2}},
                {"name": "popular", "quota": 10},
            ],
        },
    }  # fmt: skip
    funnel = Funnel(parse_config(config)).fit(two_interests.history)
    query = two_interests.test_query(two_interests.test_users()[:1], 5)
    info = funnel.run(query).explain(0, two_interests.train.item_ids)
    reasons = [e["reason"] for e in info["channels"]["cluster_interest"]]
    assert {r.split(" #")[0][-3:] for r in reasons} == {"1/2", "2/2"}
