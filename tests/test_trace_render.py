"""Readable traces: slate and per-stage tables (rich and HTML), titles, counts per stage."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.pipeline import Funnel
from funnelrec.trace import FunnelTrace
from funnelrec.trace_render import STAGE_COLUMNS, TraceView, fit_names, step_counts

CONFIG = {
    "k": 6,
    "recall": {
        "total": 80,
        "channels": [
            {"name": "popular", "share": 0.5},
            {"name": "itemcf", "share": 0.5},
        ],
    },
    "prerank": {"keep": 40},
    "rank": {"keep": 20},
    "rerank": [
        {"name": "seen_filter"},
        {
            "name": "slots",
            "params": {
                "rules": [
                    {"kind": "fresh", "positions": [2], "max_age_days": 3650, "source": "catalogue"}
                ]
            },
        },
    ],
}


@pytest.fixture(scope="module")
def trace(world_split: Split) -> FunnelTrace:
    funnel = Funnel(parse_config(CONFIG)).fit(world_split.history)
    return funnel.run(world_split.test_query(world_split.test_users()[:3], 6))


def test_fit_names_keeps_whole_names_and_counts_the_rest() -> None:
    assert fit_names("itemcf, usercf, tag, fresh", 30) == "itemcf, usercf, tag, fresh"
    assert fit_names("itemcf, usercf, tag, fresh", 17) == "itemcf, usercf +2"
    assert fit_names("itemcf, usercf, tag, fresh", 10) == "itemcf +3"
    assert fit_names("itemcf, usercf", 4) == "itemcf +1"  # rich then ellipsizes
    assert fit_names("", 6) == ""


def test_step_counts_known_answer() -> None:
    before, after = np.array([1, 2, 3, 4]), np.array([2, 1, 5])
    # 2 and 1 swap places (both moved), 5 is new, 3 and 4 are gone
    assert step_counts(before, after) == (4, 3, 2, 1, 2)
    assert step_counts(before, before) == (4, 4, 0, 0, 0)


def test_view_slate_rows_match_the_slate(trace: FunnelTrace) -> None:
    assert trace.slate is not None and trace.dataset is not None
    view = trace.view(1, user="u-test")
    items, _ = trace.slate.row(1)
    assert view.title == "Slate for u-test (6 items)"
    assert trace.user_idx is not None
    user = trace.dataset.user_ids.external([trace.user_idx[1]])[0]
    assert trace.view(1).title == f"Slate for {user} (6 items)"  # named from the query
    assert len(view.slate_rows) == len(items) == 6
    col = {name: i for i, name in enumerate(view.slate_columns)}
    assert [r[col["item"]] for r in view.slate_rows] == trace.dataset.item_ids.external(items)
    titles = trace.dataset.items["title"].gather(items).to_list()
    assert [r[col["title"]] for r in view.slate_rows] == titles
    assert {"recall", "prerank", "rank"} <= set(view.slate_columns)
    assert all(len(r[col["rank"]].split(".")[-1]) == 3 for r in view.slate_rows)  # rounded
    for r in view.slate_rows:
        assert all(c in trace.channels for c in r[col["channels"]].split(", ") if c)
    reasons = [r[col["reason"]] for r in view.slate_rows]
    assert reasons[1].startswith("fresh")  # the slot rule's reason at position 2


def test_stage_rows_chain(trace: FunnelTrace) -> None:
    rows = trace.view(0).stage_rows
    assert [r[0] for r in rows] == [
        "recall (2 channels)",
        "prerank",
        "rank",
        "seen_filter",
        "slots",
    ]
    n_in = sum(len(c.row(0)[0]) for c in trace.channels.values())
    assert rows[0][1] == str(n_in) and rows[0][2] == str(len(trace.merged.row(0)[0]))
    for prev, row in itertools.pairwise(rows):
        assert row[1] == prev[2]  # a stage receives what the previous one kept
    first, *_, last = rows
    for row in rows[1:]:
        n, kept, _, inserted, removed = (int(v) for v in row[1:])
        assert n + inserted - removed == kept
    assert last[2] == "6" and int(first[5]) == n_in - int(first[2])


def test_text_fits_the_width_and_html_escapes(trace: FunnelTrace) -> None:
    text = trace.view(0).to_text(width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "What each stage did" in text and all(c in text for c in STAGE_COLUMNS)
    page = trace._repr_html_()
    assert page.count("<table") == 2 and "query 0 of 3" in page
    view = TraceView("t", ("#", "item", "title"), [("1", "i1", "<b>&</b>")], [])
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in view._repr_html_() and "<b>&</b>" not in view._repr_html_()


def test_explain_uses_the_bound_dataset_and_adds_titles(trace: FunnelTrace) -> None:
    assert trace.dataset is not None
    info = trace.explain(0)
    assert info == json.loads(json.dumps(info))  # JSON-able
    assert (
        info["slate"][0]["title"]
        == trace.dataset.items["title"][
            int(trace.dataset.item_ids.lookup([info["slate"][0]["item"]])[0])
        ]
    )
    bare = FunnelTrace(trace.channels, trace.merged, trace.prerank, trace.rank)
    with pytest.raises(ValueError, match="item_ids"):
        bare.explain(0)
    assert "title" not in bare.explain(0, trace.dataset.item_ids)["merged"][0]


def test_slate_columns_are_stages_not_the_rankers_recall_evidence(trace: FunnelTrace) -> None:
    """The stacking ranker's inputs (``ch:``/``cs:``/``sim_max:`` stage_scores keys) stay out
    of the slate table: only the stages' own scores are columns (the demo showed 12 columns)."""
    assert trace.slate is not None
    slate = trace.slate
    evidence = {"ch:itemcf": np.zeros(len(slate.item_idx), dtype=np.float32)}
    slate.stage_scores.update(evidence)
    try:
        columns = trace.view(0).slate_columns
    finally:
        del slate.stage_scores["ch:itemcf"]
    assert "ch:itemcf" not in columns and {"recall", "prerank", "rank"} <= set(columns)
