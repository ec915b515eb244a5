"""seen_filter property: no excluded or history item ever passes; everything else keeps order."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.registry import RERANK
from funnelrec.types import Candidates, Query

ITEMS = st.lists(st.integers(0, 14), max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(ITEMS, ITEMS, ITEMS), min_size=1, max_size=4),
    st.booleans(),
    st.integers(1, 15),
)
def test_property_seen_never_passes(
    make_dataset: Any, rows: list[tuple[list[int], list[int], list[int]]], history: bool, k: int
) -> None:
    ds = make_dataset(15)
    cand_rows = [list(dict.fromkeys(c)) for c, _, _ in rows]  # candidates are distinct
    offsets, items = ragged.from_lists(cand_rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(
        list(range(len(rows))), [h for _, h, _ in rows], k=k, exclude=[e for _, _, e in rows]
    )
    seen_filter = RERANK.create("seen_filter", {"include_history": history}).fit(ds)
    out = seen_filter.rerank(query, cands, k).to_lists()
    for got, cand, (_, hist, excl) in zip(out, cand_rows, rows, strict=True):
        banned = set(excl) | (set(hist) if history else set())
        assert not banned & set(got)
        assert got == [i for i in cand if i not in banned][:k]
