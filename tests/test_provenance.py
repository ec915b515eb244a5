"""Channel provenance is matched by channel id: an empty channel never shifts the others."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec import provenance, ragged
from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.pipeline import Funnel
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.types import Candidates, Query


def chan(rows: list[list[int]], name: str) -> Candidates:
    off, items = ragged.from_lists(rows)
    return Candidates.from_flat(off, items, -ragged.position_in_row(off).astype(float), name)


def test_channel_empty_for_the_whole_batch_keeps_its_column() -> None:
    a = chan([[1, 2], [3]], "a")
    b = Candidates.empty(2, "b")  # e.g. item-CF for cold users: nothing at all
    c = chan([[5, 1], [6, 3]], "c")
    m = merge([ChannelResult(n, x, quota=5) for n, x in (("a", a), ("b", b), ("c", c))])
    assert m.channels == ("a", "b", "c")
    assert m.channel_ranks is not None
    ranks = {
        (int(r), int(i)): rr.tolist()
        for r, i, rr in zip(m.row_ids(), m.item_idx, m.channel_ranks, strict=True)
    }
    assert ranks[(0, 5)] == [-1, -1, 0]  # found by c only: column c, never column b
    assert ranks[(0, 1)] == [0, -1, 1]
    assert ranks[(1, 6)] == [-1, -1, 0]
    assert ranks[(1, 3)] == [0, -1, 1]
    i5 = int(np.flatnonzero((m.row_ids() == 0) & (m.item_idx == 5))[0])
    assert provenance.found_by(m, i5) == {"c": 0}


def test_transfer_and_ranks_for_look_channels_up_by_name() -> None:
    merged = merge(
        [
            ChannelResult("a", Candidates.empty(1, "a"), quota=3),
            ChannelResult("b", chan([[4, 7]], "b"), quota=3),
        ]
    )
    off, items = ragged.from_lists([[7, 9]])
    moved = provenance.transfer(Candidates.from_flat(off, items, np.zeros(2), None), merged)
    assert moved.channels == ("a", "b")
    assert moved.channel_ranks is not None
    assert moved.channel_ranks.tolist() == [[-1, 1], [-1, -1]]
    assert moved.stage_scores["recall"][1] == 0.0 and moved.stage_scores["recall"][0] > 0
    # a reader with its own channel order gets each channel's own column
    assert provenance.ranks_for(moved, ["b", "zzz", "a"]).tolist() == [[1, -1, -1], [-1, -1, -1]]
    assert provenance.channel_sets(moved) == [["b"], []]


CONFIG = {
    "k": 5,
    "recall": {
        "total": 40,
        "channels": [
            {"name": "itemcf", "share": 0.4, "weight": 2.0},
            {"name": "usercf", "share": 0.2},
            {"name": "popular", "share": 0.4},
        ],
    },
    "prerank": {
        "name": "light",
        "keep": 20,
        "params": {"epochs": 1, "dim": 4, "max_neg": 10, "cuts": 1, "threads": 1},
    },
    "rank": {"keep": 10},
}


@pytest.fixture(scope="module")
def funnel(world_split: Split) -> Funnel:
    return Funnel(parse_config(CONFIG)).fit(world_split.history)


def test_cold_user_alone_equals_cold_user_batched_with_a_warm_one(
    funnel: Funnel, world_split: Split
) -> None:
    warm = world_split.test_query(world_split.test_users()[:1], 5)
    cold = Query.from_lists([-1], [[]], k=5)
    both = Query.from_lists([int(warm.user_idx[0]), -1], [warm.history_items.tolist(), []], k=5)
    alone, batched = funnel.run(cold), funnel.run(both)
    assert len(alone.channels["itemcf"]) == 0 and len(alone.channels["usercf"]) == 0
    # the cold user's items were found by `popular` alone, and say so
    info = alone.explain(0, world_split.train.item_ids)
    assert info["merged"] and all(e["found_by"].keys() == {"popular"} for e in info["merged"])
    for stage in ("merged", "prerank", "rank"):
        a, b = getattr(alone, stage), getattr(batched, stage)
        np.testing.assert_array_equal(a.row(0)[0], b.row(1)[0], err_msg=stage)
        np.testing.assert_allclose(a.row(0)[1], b.row(1)[1], atol=1e-6, err_msg=stage)
    assert alone.slate is not None and batched.slate is not None
    np.testing.assert_array_equal(alone.slate.row(0)[0], batched.slate.row(1)[0])
