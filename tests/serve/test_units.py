"""Pieces of the serving path without a server: item upserts on the funnel, the timed run,
request rows, settings, id coercion, co-occurrence."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.errors import ConfigError, DataError
from funnelrec.pipeline import Funnel
from funnelrec.serve import settings as serve_settings
from funnelrec.serve.catalogue import ItemRecordError, canonical_id, item_frame
from funnelrec.serve.model import load_served, run_timed
from funnelrec.serve.query import batch_query, make_row
from funnelrec.serve.settings import load_settings, server_threads
from funnelrec.serve.similar import Cooccurrence
from funnelrec.serve.state import ServeState
from funnelrec.serve.store.base import UserState
from funnelrec.threads import apply_threads, available_cpus
from tests.serve.conftest import funnel_config


@pytest.fixture
def funnel(tiny_world: Dataset) -> Funnel:
    return Funnel(parse_config(funnel_config())).fit(tiny_world)


def test_upsert_items_extends_the_catalogue_and_calls_every_hook(
    funnel: Funnel, tiny_world: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, list[int]]] = []

    def spy(self: Any, dataset: Dataset, item_idx: np.ndarray) -> None:
        calls.append((self.channel_name, dataset.n_items, item_idx.tolist()))

    for channel in funnel.channels.values():
        monkeypatch.setattr(type(channel), "upsert_items", spy)
    sequences = funnel.dataset.sequences
    frame = pl.DataFrame(
        {
            "item_id": ["i0002", "new-a", "new-b", "new-a"],
            "category": [None, "Kitchen", "Garden", "Books"],
            "mood": ["calm", None, "loud", None],
        }
    )
    idx = funnel.upsert_items(frame)
    assert idx.tolist() == [2, 200, 201]  # new ids at the end, in order of first appearance
    ds = funnel.dataset
    assert ds.n_items == 202 and ds.items.height == 202 and tiny_world.n_items == 200
    assert ds.items["category"].to_list()[200:] == ["Books", "Garden"]  # last row wins
    assert ds.items["category"][2] == tiny_world.items["category"][2]  # null = unchanged
    assert ds.items["mood"].to_list()[:3] == [None, None, "calm"]
    assert ds.sequences is sequences  # interaction views carried over
    assert {c[0] for c in calls} == set(funnel.channels)
    assert all(c[1] == 202 and c[2] == [2, 200, 201] for c in calls)
    with pytest.raises(DataError, match="item_id"):
        funnel.upsert_items(pl.DataFrame({"name": ["x"]}))
    with pytest.raises(DataError, match="types"):
        funnel.upsert_items(pl.DataFrame({"item_id": ["x"], "created_at": ["soon"]}))


def test_timed_run_is_the_funnel_run(funnel: Funnel, tmp_path: Path) -> None:
    funnel.save(tmp_path / "a")
    served = load_served(tmp_path / "a", [], generation=1)
    query = funnel.query_for(["u0001", "u0002", "nobody"], 10)
    trace, timings = run_timed(served, query)
    assert trace.slate is not None
    reference = funnel.run(query).slate
    assert reference is not None
    assert trace.slate.to_lists() == reference.to_lists()
    stages = {f"recall:{c}" for c in funnel.channels} | {"prerank", "rank", "merge", "funnel"}
    assert stages <= set(timings) and "rerank:seen_filter" in timings
    assert timings["funnel"] >= max(v for k, v in timings.items() if k != "funnel")


def test_rows_merge_training_and_store_state(funnel: Funnel, tmp_path: Path) -> None:
    funnel.save(tmp_path / "a")
    served = load_served(tmp_path / "a", [], generation=1)
    state = UserState(history=[("i0007", 5.0), ("gone", 6.0)], seen=frozenset({"i0007", "i0009"}))
    row = make_row(served, "u0001", state, now=10.0, extra_exclude=["i0011"])
    base = funnel.query_for(["u0001"], 10)
    assert row.history.tolist() == [*base.history(0).tolist(), 7]
    assert {7, 9, 11} <= set(row.exclude.tolist())
    assert set(base.exclude_items.tolist()) <= set(row.exclude.tolist())
    cold = make_row(served, "stranger", UserState(), now=10.0)
    query = batch_query([row, cold], k=5)
    assert query.user_idx.tolist() == [1, -1] and query.history(1).size == 0


def test_rows_without_store_state_are_the_users_training_data(
    funnel: Funnel, tmp_path: Path
) -> None:
    """Every user's row without store state: the training sequence as history, its distinct
    items ascending as exclusions (read from ``user_item``, not sorted per request)."""
    funnel.save(tmp_path / "a")
    served = load_served(tmp_path / "a", [], generation=1)
    offsets, items, ts = served.dataset.sequences
    for user_idx, key in enumerate(served.dataset.user_ids.ids):
        row = make_row(served, key, UserState(), now=10.0)
        lo, hi = offsets[user_idx], offsets[user_idx + 1]
        assert row.user_idx == user_idx and row.history.tolist() == items[lo:hi].tolist()
        assert row.history_ts.tolist() == ts[lo:hi].tolist()
        assert row.exclude.dtype == np.int64
        assert row.exclude.tolist() == np.unique(items[lo:hi]).tolist()
    seen = make_row(
        served, key, UserState(seen=frozenset({"i0003", "nope"})), now=10.0, extra_exclude=["i0001"]
    )
    assert seen.exclude.tolist() == np.union1d(np.unique(items[lo:hi]), [1, 3]).tolist()


def test_settings_precedence_and_secrecy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "serve.toml"
    file.write_text(
        'artifacts = "a"\nport = 9000\nmax_k = 20\nadmin_token = "t-0123456789abcdef"\n'
    )
    monkeypatch.setenv("FUNNELREC_MAX_K", "30")
    settings = load_settings(file, port=None, host="0.0.0.0")
    assert (settings.port, settings.max_k, settings.host) == (9000, 30, "0.0.0.0")
    assert "t-0123456789abcdef" not in repr(settings)
    file.write_text('artifacts = "a"\nmystery = 1\n')
    with pytest.raises(ConfigError, match="unknown key 'mystery'"):
        load_settings(file)
    with pytest.raises(ConfigError, match="admin_token") as err:
        load_settings(artifacts="a", admin_token="short-secret")
    assert "short-secret" not in str(err.value)


def test_serving_threads_follow_the_threads_setting(
    funnel: Funnel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FUNNELREC_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # else it stands in for every CPU
    assert load_settings(artifacts="a").threads is None
    monkeypatch.setenv("FUNNELREC_THREADS", "")
    assert load_settings(artifacts="a").threads is None
    unset = load_settings(artifacts="a")
    # each worker's share of the CPUs, less one for its event loop, at least 1
    assert server_threads(unset) == max(1, available_cpus() - 1)
    assert server_threads(unset, workers=2) == max(1, available_cpus() // 2 - 1)
    assert server_threads(unset, workers=64) == 1
    monkeypatch.setattr(serve_settings, "resolve_threads", lambda: 16)
    assert [server_threads(unset, w) for w in (1, 2, 4, 8, 16)] == [15, 7, 3, 1, 1]
    monkeypatch.setattr(serve_settings, "resolve_threads", lambda: 2)
    assert [server_threads(unset, w) for w in (1, 2)] == [1, 1]  # the 2-core target machine
    monkeypatch.setenv("FUNNELREC_THREADS", "1")
    assert load_settings(artifacts="a").threads == 1
    assert load_settings(artifacts="a", threads=3).threads == 3
    with pytest.raises(ConfigError, match="'threads'"):
        load_settings(artifacts="a", threads=0)
    funnel.save(tmp_path / "a")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # the server's pools follow the setting; a refit child's environment is untouched
        settings = load_settings(artifacts=tmp_path / "a", store=f"sqlite:///{tmp_path}/s.db")
        monkeypatch.delenv("FUNNELREC_THREADS")
        state = ServeState.open(settings)
        assert torch.get_num_threads() == 1
        assert "FUNNELREC_THREADS" not in os.environ
        state.funnel_thread.shutdown()
        state.store.close()
    finally:
        apply_threads(before, export=False)


def test_ids_follow_the_catalogue_type() -> None:
    ints = IdMap([1, 2, 3])
    assert canonical_id("2", True) == 2 and canonical_id(2, False) == "2"
    assert canonical_id("x", True) == "x"
    frame, keys = item_frame([{"item_id": "4", "year": 1999}], ints, pl.Schema({"year": pl.Int64}))
    assert keys == [4] and frame["item_id"].dtype == pl.Int64
    with pytest.raises(ItemRecordError, match="integers"):
        item_frame([{"item_id": "abc"}], ints, pl.Schema())
    with pytest.raises(ItemRecordError) as err:
        item_frame([{"item_id": 5, "year": "old"}], ints, pl.Schema({"year": pl.Int64}))
    assert err.value.field == "year"


def test_cooccurrence_matches_brute_force(tiny_world: Dataset) -> None:
    x = tiny_world.user_item.toarray()
    co = x.T @ x
    deg = x.sum(axis=0)
    item = 3
    expected = co[item] / np.sqrt(np.maximum(deg * deg[item], 1.0))
    expected[item] = 0
    items, scores = Cooccurrence().neighbours(tiny_world, item, 5)
    assert np.allclose(scores, np.sort(expected)[::-1][:5])
    assert np.allclose(expected[items], scores)
