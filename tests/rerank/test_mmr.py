"""mmr: λ = 1 keeps the relevance order, small λ spreads categories; similarity math."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.rerank.mmr import MMR
from funnelrec.types import Candidates, Query


def run(
    dataset: Dataset,
    rows: list[list[int]],
    scores: list[list[float]] | None = None,
    k: int = 100,
    **params: Any,
) -> list[list[int]]:
    mmr: Reranker[Any] = RERANK.create("mmr", params).fit(dataset)
    offsets, items = ragged.from_lists(rows)
    if scores is None:
        flat = -np.arange(len(items), dtype=np.float32)
    else:
        flat = np.asarray([s for r in scores for s in r], dtype=np.float32)
    cands = Candidates.from_flat(offsets, items, flat, "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    return mmr.rerank(query, cands, k).to_lists()


def test_small_lambda_alternates_categories(make_dataset: Any) -> None:
    ds = make_dataset(6, category=["A", "A", "B", "B", "A", "B"])
    rows, scores = [[0, 1, 2, 3]], [[1.0, 0.9, 0.8, 0.7]]
    assert run(ds, rows, scores, lam=0.1, features="category") == [[0, 2, 1, 3]]
    assert run(ds, rows, scores, lam=1.0, features="category") == rows
    assert run(ds, rows, scores, k=2, lam=0.1, features="category") == [[0, 2]]
    # max-similarity saturates: once every category is present, relevance decides
    rows, scores = [[0, 1, 4, 2, 3, 5]], [[1.0, 0.95, 0.9, 0.8, 0.75, 0.7]]
    assert run(ds, rows, scores, lam=0.1, features="category") == [[0, 2, 1, 4, 3, 5]]


def test_tags_jaccard_prefers_least_overlap(make_dataset: Any) -> None:
    tags = [["x", "y"], ["x", "y"], ["x", "z"], ["w"]]
    ds = make_dataset(4, tags=tags)
    # after item 0: sims are 1 (item 1), 1/3 (item 2), 0 (item 3)
    assert run(ds, [[0, 1, 2, 3]], [[1.0, 1.0, 1.0, 1.0]], lam=0.5) == [[0, 3, 2, 1]]


def test_vector_column_cosine(make_dataset: Any) -> None:
    vecs = [[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], None]
    ds = make_dataset(4, emb=vecs)
    out = run(ds, [[0, 1, 2, 3]], [[1.0, 0.9, 0.8, 0.0]], lam=0.3, vector_column="emb")
    assert out == [[0, 2, 3, 1]]  # 1 is almost parallel to 0; 3 has no vector (sim 0)
    with pytest.raises(DataError, match="lengths"):
        RERANK.create("mmr", {"vector_column": "emb"}).fit(make_dataset(2, emb=[[1.0], [1.0, 2.0]]))


def test_rank_relevance_keeps_unsorted_input(make_dataset: Any) -> None:
    ds = make_dataset(4, category=["A", "B", "C", "D"])
    rows, scores = [[2, 0, 3, 1]], [[0.1, 0.9, 0.5, 0.3]]
    assert run(ds, rows, scores, lam=1.0) == [[0, 3, 1, 2]]  # by score
    assert run(ds, rows, scores, lam=1.0, relevance="rank") == rows


def test_config_errors(make_dataset: Any) -> None:
    with pytest.raises(ConfigError, match="'lam'"):
        RERANK.create("mmr", {"lam": 1.5})
    with pytest.raises(ConfigError, match="jaccard"):
        RERANK.create("mmr", {"vector_column": "emb", "similarity": "jaccard"})
    with pytest.raises(ConfigError, match="'emb' not found"):
        RERANK.create("mmr", {"vector_column": "emb"}).fit(make_dataset(1, category=["a"]))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_property_similarities_match_brute_force(make_dataset: Any, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12))
    tags = data.draw(st.lists(st.sets(st.sampled_from("abcde")), min_size=n, max_size=n))
    sim = data.draw(st.sampled_from(["jaccard", "cosine"]))
    mmr = RERANK.create("mmr", {"similarity": sim}).fit(
        make_dataset(n, tags=[sorted(t) for t in tags])
    )
    assert isinstance(mmr, MMR)
    items = np.asarray(data.draw(st.lists(st.integers(-1, n + 2), min_size=1, max_size=8)))
    got = mmr._similarities(items[None, :])[0]
    for i, a in enumerate(items):
        for j, b in enumerate(items):
            ta = set(tags[a]) if 0 <= a < n else set()
            tb = set(tags[b]) if 0 <= b < n else set()
            inter = len(ta & tb)
            if sim == "jaccard":
                want = inter / len(ta | tb) if ta | tb else 0.0
            else:
                want = inter / np.sqrt(len(ta) * len(tb)) if ta and tb else 0.0
            assert got[i, j] == pytest.approx(want, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from("ABC"), min_size=1, max_size=20),
    st.floats(0.0, 1.0),
    st.integers(1, 25),
)
def test_property_permutation_and_lambda_one(
    make_dataset: Any, cats: list[str], lam: float, k: int
) -> None:
    ds = make_dataset(len(cats), category=cats)
    items = list(range(len(cats)))[::-1]
    out = run(ds, [items], k=k, lam=lam)[0]
    assert len(out) == min(k, len(items)) and len(set(out)) == len(out)
    assert set(out) <= set(items)
    assert run(ds, [items], k=k, lam=1.0)[0] == items[:k]
