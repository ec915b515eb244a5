"""scatter equals a plain-Python reference greedy (the vectorised path places the rule-keeping
prefix at once, then runs the greedy loop)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelrec import ragged
from funnelrec.registry import RERANK
from funnelrec.types import Candidates, Query


def reference(cats: list[str | None], row: list[int], w: int, m: int, k: int, mode: str) -> list:
    out: list[int] = []
    left = list(row)
    while left and len(out) < k:
        recent = [cats[i] for i in out[max(len(out) - w + 1, 0) :]] if w > 1 else []
        fits = [i for i in left if cats[i] is None or recent.count(cats[i]) < m]
        if not fits and mode == "truncate":
            break
        pick = fits[0] if fits else left[0]
        out.append(pick)
        left.remove(pick)
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["A", "B", "C", None]), min_size=1, max_size=25),
    st.lists(st.integers(0, 24), min_size=1, max_size=3),
    st.integers(1, 6),
    st.integers(1, 3),
    st.integers(1, 30),
    st.sampled_from(["relax", "truncate"]),
)
def test_property_matches_reference(
    make_dataset: Any,
    cats: list[str | None],
    lengths: list[int],
    w: int,
    m: int,
    k: int,
    mode: str,
) -> None:
    ds = make_dataset(len(cats), category=cats)
    rng = np.random.default_rng(len(cats) * 31 + sum(lengths))
    rows = [rng.permutation(len(cats))[: min(n, len(cats))].tolist() for n in lengths]
    offsets, items = ragged.from_lists(rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(list(range(len(rows))), [[] for _ in rows], k=k)
    scatter = RERANK.create(
        "scatter", {"window": w, "max_per_window": m, "on_violation": mode}
    ).fit(ds)
    got = scatter.rerank(query, cands, k).to_lists()
    assert got == [reference(cats, r, w, m, k, mode) for r in rows]
