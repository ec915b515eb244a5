"""scatter: at most m items of a category in any w consecutive positions, order kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.types import Candidates, Query


def run(dataset: Dataset, rows: list[list[int]], k: int = 100, **params: Any) -> list[list[int]]:
    scatter: Reranker[Any] = RERANK.create("scatter", params).fit(dataset)
    offsets, items = ragged.from_lists(rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    return scatter.rerank(query, cands, k).to_lists()


def windows_ok(cats: Sequence[str | None], w: int, m: int) -> bool:
    """Every window of ``w`` consecutive positions has at most ``m`` of each category."""
    for start in range(max(len(cats) - w + 1, 1)):
        window = [c for c in cats[start : start + w] if c is not None]
        if any(window.count(c) > m for c in set(window)):
            return False
    return True


CATS = ["A", "A", "A", "B", "B", "C", None, None]


def test_known_answer_relax_and_truncate(make_dataset: Any) -> None:
    ds = make_dataset(len(CATS), category=CATS)
    rows = [[0, 1, 2, 3, 4, 5], [0, 1, 2]]
    assert run(ds, rows, window=3, max_per_window=1) == [[0, 3, 5, 1, 4, 2], [0, 1, 2]]
    assert run(ds, rows, window=3, max_per_window=1, on_violation="truncate") == [
        [0, 3, 5, 1, 4],
        [0],
    ]
    assert run(ds, rows, k=4, window=3, max_per_window=1) == [[0, 3, 5, 1], [0, 1, 2]]


def test_null_category_is_unconstrained(make_dataset: Any) -> None:
    ds = make_dataset(len(CATS), category=CATS)
    assert run(ds, [[6, 7, 0, 1, 99]], window=2, max_per_window=1) == [[6, 7, 0, 99, 1]]


def test_other_column(make_dataset: Any) -> None:
    ds = make_dataset(4, creator=["x", "x", "y", "y"])
    assert run(ds, [[0, 1, 2, 3]], column="creator", window=2, max_per_window=1) == [[0, 2, 1, 3]]


def test_config_errors(make_dataset: Any) -> None:
    with pytest.raises(ConfigError, match="'window'"):
        RERANK.create("scatter", {"window": 0})
    with pytest.raises(ConfigError, match="'on_violation'"):
        RERANK.create("scatter", {"on_violation": "drop"})
    with pytest.raises(ConfigError, match="'brand' not found"):
        RERANK.create("scatter", {"column": "brand"}).fit(make_dataset(2, category=["a", "b"]))


@st.composite
def satisfiable(draw: st.DrawFn) -> tuple[list[str], list[int], int, int, int]:
    """Categories of a list with ``w`` categories having ``k`` items each (so greedy can
    always find a fitting item), shuffled, plus noise items; returns (cats, order, w, m, k)."""
    w = draw(st.integers(1, 6))
    m = draw(st.integers(1, 3))
    k = draw(st.integers(1, 12))
    cats = [f"c{c}" for c in range(w) for _ in range(k)]
    cats += draw(st.lists(st.sampled_from(["c0", "c1", "n1", "n2"]), max_size=20))
    order = draw(st.permutations(range(len(cats))))
    return cats, list(order), w, m, k


@settings(max_examples=150, deadline=None)
@given(satisfiable(), st.sampled_from(["relax", "truncate"]))
def test_property_window_holds_when_satisfiable(
    make_dataset: Any, case: tuple[list[str], list[int], int, int, int], mode: str
) -> None:
    cats, order, w, m, k = case
    ds = make_dataset(len(cats), category=cats)
    out = run(ds, [order], k=k, window=w, max_per_window=m, on_violation=mode)[0]
    assert len(out) == k
    assert len(set(out)) == len(out) and set(out) <= set(order)
    assert windows_ok([cats[i] for i in out], w, m)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from("ABCD"), min_size=1, max_size=30),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(1, 40),
)
def test_property_any_input(make_dataset: Any, cats: list[str], w: int, m: int, k: int) -> None:
    ds = make_dataset(len(cats), category=cats)
    items = list(range(len(cats)))
    relaxed = run(ds, [items], k=k, window=w, max_per_window=m)[0]
    assert set(relaxed) <= set(items) and len(relaxed) == min(k, len(items))
    assert len(set(relaxed)) == len(relaxed)
    cut = run(ds, [items], k=k, window=w, max_per_window=m, on_violation="truncate")[0]
    assert windows_ok([cats[i] for i in cut], w, m)
    assert cut == relaxed[: len(cut)]  # truncate = relax up to the first violation
    if windows_ok(cats, w, m):  # input already fine: nothing moves
        assert relaxed == items[:k] and cut == items[:k]
