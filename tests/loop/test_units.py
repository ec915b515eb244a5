"""Rollout arithmetic (hash split, team draft, Wilson intervals) and the online item-CF
blend, on known answers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from funnelrec.serve.online import online_scores, union_topk
from funnelrec.serve.rollout import CANDIDATE, CONTROL, arm_of, team_draft, wilson
from funnelrec.types import Candidates, Query


def test_arm_split_is_stable_and_sized() -> None:
    users = [f"user{n}" for n in range(4000)]
    first = [arm_of(u, 0.25) for u in users]
    assert first == [arm_of(u, 0.25) for u in users]  # a pure function of the id
    assert 0.22 < first.count(CANDIDATE) / 4000 < 0.28
    # growing the share only moves users control -> candidate, never back
    grown = [arm_of(u, 0.5) for u in users]
    assert all(g == CANDIDATE for f, g in zip(first, grown, strict=True) if f == CANDIDATE)
    assert {arm_of(u, 0.0) for u in users} == {CONTROL}
    assert arm_of("x", 0.5, salt="a") == arm_of("x", 0.5, salt="a")


def test_team_draft_is_balanced_and_keeps_each_rankings_order() -> None:
    a, b = ["1", "2", "3", "4", "5"], ["3", "6", "1", "7", "8"]
    for seed in range(20):
        drafted = team_draft(a, b, 6, seed)
        items = [i for i, _ in drafted]
        assert len(items) == len(set(items)) == 6
        teams = [t for _, t in drafted]
        assert abs(teams.count(CONTROL) - teams.count(CANDIDATE)) <= 1
        for team, ranking in ((CONTROL, a), (CANDIDATE, b)):
            mine = [i for i, t in drafted if t == team]
            assert mine == sorted(mine, key=ranking.index)
    assert [i for i, _ in team_draft(["1"], [], 3, 0)] == ["1"]  # runs out gracefully


def test_wilson_interval_known_values() -> None:
    p, lo, hi = wilson(5, 10)
    assert (
        p == 0.5 and lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    )
    assert wilson(0, 100)[1] == 0.0 and wilson(0, 0) == (0.0, 0.0, 1.0)


def test_online_pairs_join_the_channels_candidates() -> None:
    n = 6
    pairs = sp.csr_matrix(
        (np.array([3.0, 1.0]), (np.array([0, 0]), np.array([5, 2]))), shape=(n, n)
    )
    query = Query.from_lists([0, 1], [[4, 0], [1]], k=3, exclude=[[4, 0, 2], [1]])
    base = Candidates.from_flat(
        np.array([0, 2, 3]), np.array([1, 3, 2]), np.array([0.8, 0.4, 0.5]), "itemcf"
    )
    online = online_scores(pairs, query, history_len=5)
    merged = union_topk(base, online, query, k=3)
    # row 0: item 5 (3 co-occurrences -> 0.75 x best 0.8 = 0.6) joins; 2 is excluded
    assert merged.row(0)[0].tolist() == [1, 5, 3]
    assert merged.row(0)[1] == pytest.approx([0.8, 0.6, 0.4])
    assert merged.row(1)[0].tolist() == [2]  # nothing online for item 1


def test_scheduled_refit_runs_the_refit_worker_on_the_servers_store(tmp_path: Path) -> None:
    from funnelrec.serve.refit_schedule import refit_command
    from funnelrec.serve.settings import load_settings

    art = tmp_path / "models" / "gen-1"
    settings = load_settings(
        artifacts=art, store="sqlite:///s.db", refit_every_s=3600, refit_margin=0.05
    )
    state = SimpleNamespace(settings=settings, current=SimpleNamespace(artifacts=art))
    cmd = refit_command(state)  # type: ignore[arg-type]
    assert cmd[1:4] == ["-m", "funnelrec", "refit"]
    flags = dict(zip(cmd[4::2], cmd[5::2], strict=False))
    assert flags["--store"] == flags["--data"] == "sqlite:///s.db"
    assert flags["--config"] == str(art / "config.yaml")
    assert flags["--serving"] == str(art) and flags["--margin"] == "0.05"
    assert flags["--out"] == str(tmp_path / "models" / "refits")
