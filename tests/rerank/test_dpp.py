"""dpp: greedy MAP matches a brute-force log-det greedy; θ = 1 keeps order; sources."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.context import FitContext as FunnelContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.models.mf import MatrixFactorization
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.types import Candidates, Query


def run(
    reranker: Reranker[Any], rows: list[list[int]], scores: list[list[float]], k: int = 100
) -> list[list[int]]:
    offsets, items = ragged.from_lists(rows)
    flat = np.asarray([s for r in scores for s in r], dtype=np.float32)
    cands = Candidates.from_flat(offsets, items, flat, "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    return reranker.rerank(query, cands, k).to_lists()


def brute_force(vecs: np.ndarray, rel: np.ndarray, theta: float, jitter: float, k: int) -> list:
    """Greedy over explicit log-determinants of ``L = diag(q)(S + jitter·I)diag(q)``."""
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    r = (rel - rel.min()) / (rel.max() - rel.min())
    q = np.exp(theta / (2 * (1 - theta)) * r)
    kernel = q[:, None] * (unit @ unit.T + jitter * np.eye(len(r))) * q[None, :]
    chosen: list[int] = []
    for _ in range(min(k, len(r))):
        gains = [
            np.linalg.slogdet(kernel[np.ix_([*chosen, i], [*chosen, i])])[1]
            if i not in chosen
            else -np.inf
            for i in range(len(r))
        ]
        chosen.append(int(np.argmax(gains)))
    return chosen


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(2, 5), st.floats(0.05, 0.95), st.integers(0, 10_000))
def test_property_matches_brute_force(
    make_dataset: Any, n: int, d: int, theta: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, d))
    rel = rng.random(n)
    ds = make_dataset(n, emb=vecs.tolist())
    dpp = RERANK.create("dpp", {"theta": theta, "vector_column": "emb", "jitter": 0.01})
    got = run(dpp.fit(ds), [list(range(n))], [rel.tolist()], k=n)[0]
    assert got == brute_force(vecs, rel, theta, 0.01, n)


def test_theta_one_keeps_order_and_small_theta_spreads(make_dataset: Any) -> None:
    ds = make_dataset(6, category=["A", "A", "A", "B", "B", "C"])
    rows, scores = [[0, 1, 2, 3, 4, 5]], [[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]]
    keep = RERANK.create("dpp", {"theta": 1.0, "features": "category"}).fit(ds)
    assert run(keep, rows, scores) == rows
    spread = RERANK.create("dpp", {"theta": 0.5, "features": "category"}).fit(ds)
    # one item of each category first (by relevance), then the rest by relevance
    assert run(spread, rows, scores) == [[0, 3, 5, 1, 2, 4]]
    assert run(spread, rows, scores, k=2) == [[0, 3]]
    # two rows of different lengths in one batch
    assert run(spread, [[0, 1, 3], [2, 1]], [[1.0, 0.9, 0.1], [0.5, 0.4]]) == [[0, 3, 1], [2, 1]]


def test_channel_embeddings_source(make_dataset: Any) -> None:
    ds = make_dataset(4, category=["A", "A", "B", "B"])
    model = MatrixFactorization(1, 4, 2)
    model.item.weight.data[:] = 0
    model.item.weight.data[0, 0] = model.item.weight.data[1, 0] = 1.0  # 0 and 1 parallel
    model.item.weight.data[2, 1] = model.item.weight.data[3, 1] = 1.0  # 2 and 3 parallel
    context = FunnelContext(channels={"mf": SimpleNamespace(model_=model)})
    dpp = RERANK.create("dpp", {"theta": 0.5, "channel": "mf"}).fit_in_funnel(ds, context)
    assert run(dpp, [[0, 1, 2, 3]], [[1.0, 0.9, 0.8, 0.7]]) == [[0, 2, 1, 3]]
    with pytest.raises(ConfigError, match="'two_tower' not found"):
        RERANK.create("dpp", {"channel": "two_tower"}).fit_in_funnel(ds, context)
    plain = FunnelContext(channels={"pop": SimpleNamespace()})
    with pytest.raises(ConfigError, match="no item embeddings"):
        RERANK.create("dpp", {"channel": "pop"}).fit_in_funnel(ds, plain)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="'theta'"):
        RERANK.create("dpp", {"theta": 1.5})
    with pytest.raises(ConfigError, match="not both"):
        RERANK.create("dpp", {"vector_column": "v", "channel": "mf"})


@pytest.mark.perf  # a wall-clock budget: reported by CI's perf step, not a unit test
def test_speed_100_items(world: Dataset) -> None:
    """One 100-item list re-ranked to 10 in well under 10 ms (the benchmark measures it)."""
    dpp = RERANK.create("dpp", {"theta": 0.7}).fit(world)
    rng = np.random.default_rng(0)
    items = rng.permutation(world.n_items)[:100][None, :].astype(np.int64)
    cands = Candidates.from_dense(items, np.sort(rng.random((1, 100)))[:, ::-1].copy(), "t")
    query = Query.from_lists([0], [[]], k=10)
    dpp.rerank(query, cands, 10)
    best = min(_timed(lambda: dpp.rerank(query, cands, 10)) for _ in range(5))
    assert best < 0.02, f"{best * 1000:.1f} ms"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_edge_cases_unknown_items_and_empty_batches(world: Dataset) -> None:
    unknown = world.n_items + 5
    offsets, items = ragged.from_lists([[], [unknown, 3, unknown + 1], [4]])
    cands = Candidates.from_flat(offsets, items, np.array([0.5, 0.4, 0.3, 0.2]), "t")
    query = Query.from_lists([0, 1, 2], [[], [], []], k=5)
    for name, params in (("dpp", {}), ("near_dedup", {"features": "tags"}), ("prm", {})):
        reranker = RERANK.create(name, params | ({"epochs": 1, "dim": 4} if name == "prm" else {}))
        reranker.fit(world)
        slate = reranker.rerank(query, cands, 5)
        assert slate.to_lists()[0] == [] and sorted(slate.to_lists()[1]) == [
            3,
            unknown,
            unknown + 1,
        ]
        assert len(reranker.rerank(Query.from_lists([], [], k=5), Candidates.empty(0, "t"), 5)) == 0
