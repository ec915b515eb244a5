"""``Funnel.run`` is batch invariant: every stage's row ``i`` equals the run of row ``i``
alone, for warm, cold and mixed batches and when a channel returns nothing."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec.config import parse_config
from funnelrec.data.splits import Split
from funnelrec.pipeline import Funnel
from funnelrec.trace import FunnelTrace
from funnelrec.types import Candidates, Query
from tests.contracts.conftest import BATCH_NAMES, assert_same_row

SMALL = {"epochs": 1, "dim": 4, "max_neg": 10, "cuts": 1, "threads": 1}
CONFIG = {
    "k": 10,
    "recall": {
        "total": 60,
        "channels": [
            {"name": "itemcf", "share": 0.3, "weight": 2.0},
            {"name": "usercf", "share": 0.2},
            {"name": "tag", "share": 0.1, "params": {"fallback_popular": True}},
            {"name": "high_ctr", "share": 0.1},
            {"name": "fresh", "share": 0.1, "params": {"max_age_days": 30}},
            {"name": "popular", "alias": "popular_recent", "share": 0.2},
        ],
    },
    "prerank": {"name": "light", "keep": 40, "params": SMALL},
    "rank": {"name": "ctr", "keep": 25, "params": {**SMALL, "model": "deepfm", "hidden": [8]}},
    "rerank": [
        {"name": "seen_filter"},
        {"name": "dedup", "params": {"key": "title"}},
        {"name": "mmr", "params": {"lam": 0.8}},
        {"name": "scatter", "params": {"window": 4, "max_per_window": 2}},
        {
            "name": "slots",
            "params": {
                "rules": [
                    {"kind": "fresh", "positions": [3], "max_age_days": 14, "source": "catalogue"}
                ]
            },
        },
    ],
}


@pytest.fixture(scope="module")
def funnel(world_split: Split) -> Funnel:
    return Funnel(parse_config(CONFIG)).fit(world_split.history)


def stages(trace: FunnelTrace) -> dict[str, Candidates]:
    """Every stage's output of a trace, each recall channel's raw candidates included."""
    assert trace.slate is not None
    out = {f"channel:{cid}": c for cid, c in trace.channels.items()}
    out.update({"merged": trace.merged, "prerank": trace.prerank, "rank": trace.rank})
    out.update({f"rerank:{name}": c for name, c in trace.rerank_steps})
    out["slate"] = trace.slate
    return out


@pytest.mark.parametrize("batch", BATCH_NAMES)
def test_funnel_run_is_batch_invariant(
    batch: str, funnel: Funnel, batches: dict[str, Query]
) -> None:
    query = batches[batch]
    trace = funnel.run(query)
    if batch == "empty":  # the case that shifted provenance: channels empty for all rows
        assert len(trace.channels["itemcf"]) == 0 and len(trace.channels["usercf"]) == 0
    batched = stages(trace)
    for i in range(query.batch_size):
        alone = stages(funnel.run(query.select(np.array([i], dtype=np.int64))))
        assert alone.keys() == batched.keys()
        for name, cands in batched.items():
            assert_same_row(cands, i, alone[name], f"{batch}/{name}, row {i}")
