"""near_dedup: near-parallel vectors collapse to their first item; sources and errors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.context import FitContext as FunnelContext
from funnelrec.errors import ConfigError
from funnelrec.models.mf import MatrixFactorization
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.types import Candidates, Query


def run(reranker: Reranker[Any], rows: list[list[int]], k: int = 100) -> list[list[int]]:
    offsets, items = ragged.from_lists(rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    return reranker.rerank(query, cands, k).to_lists()


def angle(deg: float) -> list[float]:
    return [float(np.cos(np.radians(deg))), float(np.sin(np.radians(deg)))]


def test_known_answer(make_dataset: Any) -> None:
    vecs = [[1.0, 0.0], [0.999, 0.01], [0.0, 1.0], [0.0, 2.0], None]
    ds = make_dataset(5, emb=vecs)
    dedup = RERANK.create("near_dedup", {"vector_column": "emb"}).fit(ds)
    assert run(dedup, [[0, 1, 2, 3, 4, 0], [3, 1, 2, 0]]) == [[0, 2, 4], [3, 1]]
    assert run(dedup, [[1, 0, 2, 3, 4]], k=2) == [[1, 2]]


def test_only_kept_items_remove_others(make_dataset: Any) -> None:
    # 0 ~ 1 and 1 ~ 2 but 0 !~ 2: dropping 1 (a copy of 0) lets 2 stay
    ds = make_dataset(3, emb=[angle(0), angle(20), angle(40)])
    dedup = RERANK.create("near_dedup", {"vector_column": "emb", "threshold": 0.9}).fit(ds)
    assert run(dedup, [[0, 1, 2]]) == [[0, 2]]
    assert run(dedup, [[1, 0, 2]]) == [[1]]


def test_tags_source(make_dataset: Any) -> None:
    ds = make_dataset(3, tags=[["a", "b"], ["b", "a"], ["a"]])
    dedup = RERANK.create("near_dedup", {"features": "tags"}).fit(ds)
    assert run(dedup, [[0, 1, 2]]) == [[0, 2]]


def test_channel_source(make_dataset: Any) -> None:
    ds = make_dataset(3)
    model = MatrixFactorization(1, 3, 2)
    model.item.weight.data[:] = 0
    model.item.weight.data[0, 0] = model.item.weight.data[2, 0] = 1.0
    model.item.weight.data[1, 1] = 1.0
    context = FunnelContext(channels={"two_tower": SimpleNamespace(model_=model)})
    dedup = RERANK.create("near_dedup", {"channel": "two_tower"}).fit_in_funnel(ds, context)
    assert run(dedup, [[2, 1, 0]]) == [[2, 1]]


def test_config_errors(make_dataset: Any) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        RERANK.create("near_dedup", {})
    with pytest.raises(ConfigError, match="exactly one"):
        RERANK.create("near_dedup", {"vector_column": "v", "channel": "mf"})
    with pytest.raises(ConfigError, match="'threshold'"):
        RERANK.create("near_dedup", {"vector_column": "v", "threshold": 0})
    with pytest.raises(ConfigError, match="'v' not found"):
        RERANK.create("near_dedup", {"vector_column": "v"}).fit(make_dataset(2))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10), st.floats(0.3, 0.99), st.integers(0, 10_000), st.integers(1, 12))
def test_property_matches_sequential_walk(
    make_dataset: Any, n: int, threshold: float, seed: int, k: int
) -> None:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, 3))
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    row = rng.integers(0, n, size=rng.integers(1, 12)).tolist()  # may repeat ids
    ds = make_dataset(n, emb=vecs.tolist())
    dedup = RERANK.create("near_dedup", {"vector_column": "emb", "threshold": threshold})
    got = run(dedup.fit(ds), [row], k=k)[0]
    want: list[int] = []
    for item in row:
        if all(unit[item] @ unit[j] < threshold - 1e-6 for j in want):
            want.append(item)
    assert got == want[:k]
