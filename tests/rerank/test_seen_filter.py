"""seen_filter: exclusions, history (whole or recent), context seen sets."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.errors import ConfigError
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.types import Candidates, Query

DAY = 86_400.0


def query(context: dict[str, Any] | None = None) -> Query:
    """Two users: user 0 saw item 1 twenty days ago and item 2 one day ago."""
    q = Query.from_lists([0, 1], [[1, 2], []], k=10, exclude=[[3], []], now=30 * DAY)
    q = dataclasses.replace(q, history_ts=np.array([10 * DAY, 29 * DAY]))
    return dataclasses.replace(q, context=context or {})


def run(make_dataset: Any, q: Query, k: int = 10, **params: Any) -> list[list[int]]:
    f: Reranker[Any] = RERANK.create("seen_filter", params).fit(make_dataset(6))
    offsets, items = ragged.from_lists([[0, 1, 2, 3, 4], [1, 2, 3]])
    cands = Candidates.from_flat(offsets, items, -np.arange(8, dtype=np.float32), "t")
    return f.rerank(q, cands, k).to_lists()


def test_default_drops_exclusions_and_history(make_dataset: Any) -> None:
    assert run(make_dataset, query()) == [[0, 4], [1, 2, 3]]
    assert run(make_dataset, query(), k=1) == [[0], [1]]
    assert run(make_dataset, query(), include_history=False) == [[0, 1, 2, 4], [1, 2, 3]]


def test_recent_history_only(make_dataset: Any) -> None:
    assert run(make_dataset, query(), exclude_recent_days=7) == [[0, 1, 4], [1, 2, 3]]


def test_context_seen_items(make_dataset: Any) -> None:
    seen = np.array([[4, -1], [2, 3]])
    got = run(make_dataset, query({"seen_items": seen}), context_key="seen_items")
    assert got == [[0], [1]]
    assert run(make_dataset, query(), context_key="seen_items") == [[0, 4], [1, 2, 3]]


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="include_history"):
        RERANK.create("seen_filter", {"include_history": False, "exclude_recent_days": 3})
    with pytest.raises(ConfigError, match="'exclude_recent_days'"):
        RERANK.create("seen_filter", {"exclude_recent_days": -1})
