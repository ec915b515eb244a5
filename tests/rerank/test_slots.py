"""slots: fixed-type items at fixed positions, moved not duplicated, exclusions honoured."""

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
from funnelrec.types import Candidates, Query, Slate

DAY = 86_400.0
N_ITEMS = 10


def catalogue(make_dataset: Any) -> Dataset:
    """Item i is created on day i; categories alternate A/B; item 5 is the most popular B."""
    dataset: Dataset = make_dataset(
        N_ITEMS,
        popularity=[1, 1, 1, 2, 1, 9, 1, 1, 1, 1],
        created_at=[i * DAY for i in range(N_ITEMS)],
        category=["A", "B"] * (N_ITEMS // 2),
    )
    return dataset


def run(
    dataset: Dataset,
    rows: list[list[int]],
    rules: list[dict[str, Any]],
    k: int = 50,
    now_days: float = 10.0,
    exclude: list[list[int]] | None = None,
) -> Slate:
    slots: Reranker[Any] = RERANK.create("slots", {"rules": rules}).fit(dataset)
    offsets, items = ragged.from_lists(rows)
    cands = Candidates.from_flat(offsets, items, -np.arange(len(items), dtype=np.float32), "t")
    query = Query.from_lists(
        list(range(len(rows))), [[] for _ in rows], k=k, exclude=exclude, now=now_days * DAY
    )
    return slots.rerank(query, cands, k)


def fresh(positions: list[int], source: str = "candidates", days: float = 2.5) -> dict[str, Any]:
    return {"kind": "fresh", "positions": positions, "max_age_days": days, "source": source}


def test_fresh_candidate_moved_to_its_slot(make_dataset: Any) -> None:
    slate = run(catalogue(make_dataset), [[0, 1, 2, 3, 4, 8, 5], [0, 1]], [fresh([3])])
    assert slate.to_lists() == [[0, 1, 8, 2, 3, 4, 5], [0, 1]]
    assert slate.reasons is not None
    assert slate.reasons.tolist()[:3] == ["", "", "fresh item (slot 3)"]


def test_fresh_from_catalogue_inserted_newest_first(make_dataset: Any) -> None:
    ds = catalogue(make_dataset)
    rows = [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    slate = run(ds, rows, [fresh([2, 4], "catalogue")], exclude=[[], [9, 1]])
    assert slate.to_lists() == [[0, 9, 1, 8, 2, 3, 4], [0, 8, 1, 2, 3, 4]]
    assert slate.source_names()[1] == ""  # inserted: no recall channel
    assert slate.scores[1] == pytest.approx(-4.0)  # the row's lowest score
    assert run(ds, rows[:1], [fresh([2, 4], "catalogue")], k=3).to_lists() == [[0, 9, 1]]
    # items created after the request time are not fresh
    late = run(ds, rows[:1], [fresh([1], "catalogue")], now_days=8.5)
    assert late.to_lists() == [[8, 0, 1, 2, 3, 4]]


def test_short_list_gets_slot_item_at_its_end(make_dataset: Any) -> None:
    slate = run(catalogue(make_dataset), [[0], []], [fresh([5], "catalogue")])
    assert slate.to_lists() == [[0, 9], [9]]


def test_promoted_and_category(make_dataset: Any) -> None:
    ds = catalogue(make_dataset)
    promoted = {"kind": "promoted", "positions": [1], "items": ["3", 7]}
    assert run(ds, [[0, 1, 2]], [promoted]).to_lists() == [[3, 0, 1, 2]]
    assert run(ds, [[0, 3, 2]], [promoted]).to_lists() == [[3, 0, 2]]  # moved, not doubled
    assert run(ds, [[0, 1]], [promoted], exclude=[[3]]).to_lists() == [[7, 0, 1]]
    category = {"kind": "category", "positions": [1], "category": "B"}
    assert run(ds, [[0, 2, 3, 1]], [category]).to_lists() == [[3, 0, 2, 1]]
    from_catalogue = {**category, "source": "catalogue", "reason": "try B at {position}"}
    slate = run(ds, [[0, 2]], [from_catalogue])
    assert slate.to_lists() == [[5, 0, 2]]  # most popular B
    assert slate.reasons is not None and slate.reasons[0] == "try B at 1"


def test_several_rules_no_item_twice(make_dataset: Any) -> None:
    ds = catalogue(make_dataset)
    rules = [
        fresh([1, 2], "catalogue"),
        {"kind": "category", "positions": [3], "category": "B", "source": "catalogue"},
    ]
    # the fresh slots take 9 and 8; the B slot may not reuse 9 and takes the best other B
    assert run(ds, [[0, 2]], rules).to_lists() == [[9, 8, 5, 0, 2]]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "'rules'"),
        ([{"kind": "fresh", "positions": [2, 2]}], "repeat"),
        ([{"kind": "fresh", "positions": [0]}], "positions"),
        ([{"kind": "fresh", "positions": [3]}, {"kind": "fresh", "positions": [3]}], "3"),
        ([{"kind": "boosted", "positions": [1]}], "boosted"),
        ([{"kind": "fresh", "positions": [1], "items": [1]}], "unknown key 'rules.0.fresh.items'"),
        ([{"kind": "promoted", "positions": [1]}], "items"),
    ],
)
def test_config_errors(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RERANK.create("slots", {"rules": rules})


def test_fit_errors_name_the_value(make_dataset: Any) -> None:
    ds = catalogue(make_dataset)
    with pytest.raises(ConfigError, match="promoted item 'zz'"):
        RERANK.create(
            "slots", {"rules": [{"kind": "promoted", "positions": [1], "items": ["zz"]}]}
        ).fit(ds)
    with pytest.raises(ConfigError, match="'Q'"):
        RERANK.create(
            "slots", {"rules": [{"kind": "category", "positions": [1], "category": "Q"}]}
        ).fit(ds)


@st.composite
def slot_cases(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 25))
    created = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    rows = draw(
        st.lists(st.lists(st.integers(0, n - 1), unique=True, max_size=15), min_size=1, max_size=4)
    )
    exclude = [draw(st.lists(st.integers(0, n - 1), max_size=6)) for _ in rows]
    positions = draw(st.lists(st.integers(1, 12), unique=True, min_size=1, max_size=4))
    return {
        "created": created,
        "rows": rows,
        "exclude": exclude,
        "positions": positions,
        "source": draw(st.sampled_from(["candidates", "catalogue"])),
        "k": draw(st.integers(1, 15)),
    }


@settings(max_examples=150, deadline=None)
@given(slot_cases())
def test_property_slots_filled_order_kept(make_dataset: Any, case: dict[str, Any]) -> None:
    created = case["created"]
    ds = make_dataset(len(created), created_at=[c * DAY for c in created])
    rules = [fresh(case["positions"], case["source"], days=5.0)]
    slate = run(ds, case["rows"], rules, k=case["k"], now_days=15.0, exclude=case["exclude"])
    is_fresh = [10 <= c <= 15 for c in created]
    reasons = slate.reasons.tolist() if slate.reasons is not None else [""] * len(slate)
    for b, out in enumerate(slate.to_lists()):
        row, excl = case["rows"][b], set(case["exclude"][b])
        lo = int(slate.offsets[b])
        placed = [i for j, i in enumerate(out) if reasons[lo + j]]
        assert len(out) <= case["k"] and len(set(out)) == len(out)
        assert all(is_fresh[i] and i not in excl for i in placed)
        assert set(out) - set(row) <= set(placed)  # only slot items are inserted
        others = [i for i in out if i not in placed]
        assert others == [i for i in row if i not in placed][: len(others)]
        pool = {i for i in row if is_fresh[i] and i not in excl}
        if case["source"] == "catalogue":
            pool |= {i for i in range(len(created)) if is_fresh[i] and i not in excl}
        wanted = [p for p in sorted(case["positions"]) if p <= case["k"]]
        assert len(placed) == min(len(pool), len(wanted))
        for p in wanted[: len(placed)]:
            if p <= len(out):
                assert out[p - 1] in placed
