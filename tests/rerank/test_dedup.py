"""dedup: repeated ids and near-duplicate keys removed, first (highest-ranked) kept."""

from __future__ import annotations

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

TITLES = [
    "Blue Moon",  # 0
    "blue moon (Remastered)",  # 1: duplicate of 0
    "Blue  Moon - Deluxe Edition",  # 2: duplicate of 0
    "Toy Story (1995)",  # 3
    "Toy Story (1999)",  # 4: a remake, not a duplicate
    None,  # 5
    None,  # 6: null keys never collide
    "Red Sun [Special Edition]",  # 7
    "Red Sun",  # 8: duplicate of 7
    "Hamlet: Part 1",  # 9
    "Hamlet: Part 2",  # 10
]


def run(dataset: Dataset, rows: list[list[int]], k: int = 50, **params: Any) -> list[list[int]]:
    dedup: Reranker[Any] = RERANK.create("dedup", params).fit(dataset)
    offsets, items = ragged.from_lists(rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    return dedup.rerank(query, cands, k).to_lists()


def test_titles_normalised_first_kept(make_dataset: Any) -> None:
    ds = make_dataset(len(TITLES), title=TITLES)
    rows = [[1, 0, 2, 3, 4, 5, 6, 8, 7, 9, 10, 5], [2, 1, 0], []]
    assert run(ds, rows) == [[1, 3, 4, 5, 6, 8, 9, 10], [2], []]
    assert run(ds, rows, k=3)[0] == [1, 3, 4]


def test_pattern_and_case_are_configurable(make_dataset: Any) -> None:
    ds = make_dataset(len(TITLES), title=TITLES)
    assert run(ds, [[0, 1, 2]], strip_pattern=None) == [[0, 1, 2]]
    assert run(ds, [[0, 1]], lowercase=False, strip_pattern=r"\s*\(.*\)$") == [[0, 1]]
    assert run(ds, [[3, 4, 0]], strip_pattern=r"\s*\(\d+\)$") == [[3, 0]]


def test_other_key_and_ids_only(make_dataset: Any) -> None:
    ds = make_dataset(5, series=["s1", None, "s1", "s2", None], title=["a"] * 5)
    assert run(ds, [[0, 1, 2, 3, 4, 3, 1]], key="series") == [[0, 1, 3, 4]]
    assert run(ds, [[0, 1, 0, 2]], key=None) == [[0, 1, 2]]
    assert run(ds, [[4, 0, 1]]) == [[4]]  # same title everywhere


def test_integer_key_and_unknown_items(make_dataset: Any) -> None:
    ds = make_dataset(4, creator=[7, 7, 8, None])
    assert run(ds, [[1, 0, 2, 3, 99, 99, 100]], key="creator") == [[1, 2, 3, 99, 100]]


def test_synthetic_re_releases_removed(world: Dataset) -> None:
    pairs = world.meta["near_duplicates"]
    rows = [[copy, orig] for copy, orig in pairs]
    assert run(world, rows) == [[copy] for copy, _ in pairs]


def test_config_errors(make_dataset: Any) -> None:
    ds = make_dataset(2, title=["a", "b"])
    with pytest.raises(ConfigError, match="'creator' not found"):
        RERANK.create("dedup", {"key": "creator"}).fit(ds)
    with pytest.raises(ConfigError, match="strip_pattern"):
        RERANK.create("dedup", {"strip_pattern": "(unclosed"})
    with pytest.raises(ConfigError, match="unknown key 'keys'"):
        RERANK.create("dedup", {"keys": "title"})


@st.composite
def keyed_rows(draw: st.DrawFn) -> tuple[list[str | None], list[list[int]], int]:
    n_items = draw(st.integers(1, 30))
    keys = draw(
        st.lists(st.sampled_from(["a", "B", "b ", "c", None]), min_size=n_items, max_size=n_items)
    )
    rows = draw(
        st.lists(st.lists(st.integers(0, n_items - 1), max_size=25), min_size=1, max_size=5)
    )
    return keys, rows, draw(st.integers(1, 30))


@settings(max_examples=100, deadline=None)
@given(keyed_rows())
def test_property_unique_keys_order_kept(
    make_dataset: Any, case: tuple[list[str | None], list[list[int]], int]
) -> None:
    keys, rows, k = case
    ds = make_dataset(len(keys), title=keys)
    out = run(ds, rows, k=k)
    norm = [None if t is None else t.strip().lower() for t in keys]
    for row, kept in zip(rows, out, strict=True):
        assert len(kept) <= k
        assert len(set(kept)) == len(kept)
        named = [norm[i] for i in kept if norm[i] is not None]
        assert len(set(named)) == len(named)
        # kept items are the first occurrences, in input order (then cut to k)
        expected, seen = [], set()
        for item in row:
            key = ("id", item) if norm[item] is None else ("key", norm[item])
            if key not in seen:
                seen.add(key)
                expected.append(item)
        assert kept == expected[:k]
