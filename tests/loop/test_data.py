"""Training data from the serving store: stacking on a base dataset, export, ``fit --data``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from funnelrec.cli import app
from funnelrec.data.dataset import Dataset
from funnelrec.loop.data import export_store, load_specs, load_store_dataset
from funnelrec.pipeline import Funnel
from funnelrec.serve.store.base import Event, Feedback, Impression, open_store
from tests.loop.conftest import WORLD, write_config

T = 1_800_000_000.0


def small_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = open_store(url)
    store.upsert_items([{"item_id": "n1", "category": "news", "title": "New"}])
    shown = [("n1", 0), ("i0003", 1), ("i0004", 5)]
    store.append_impressions(
        [Impression("r1", "zed", i, p, 1.0 - p / 10, 1, "control", T) for i, p in shown]
    )
    click = Event("zed", "n1", "click", T + 5)
    store.append_events([Event("u0001", "i0002", "like", T), click])
    store.append_feedback([Feedback("r1", click)])
    store.close()
    return url


def test_store_rows_stack_on_the_base_with_its_id_maps(world: Dataset, tmp_path: Path) -> None:
    url = small_store(tmp_path / "s.db")
    ds = load_store_dataset(url, base=world)
    assert (ds.n_users, ds.n_items) == (world.n_users + 1, world.n_items + 1)
    assert ds.user_ids.external(range(world.n_users)) == world.user_ids.external(
        range(world.n_users)
    )
    assert ds.item_ids.index("n1") == world.n_items and ds.user_ids.index("zed") == world.n_users
    assert ds.items["category"][world.n_items] == "news"
    assert len(ds) == len(world) + 2 and set(ds.feedback) >= {"click", "like", "purchase"}
    tail = ds.interactions.tail(2)
    assert tail["like"].to_list() == [1.0, 0.0] and tail["click"].to_list() == [0.0, 1.0]
    assert ds.interactions.head(len(world))["like"].null_count() == 0
    assert ds.impressions is not None and world.impressions is not None
    new = ds.impressions.slice(world.impressions.height)
    # position 5 lies below the only click (position 0) and the first two: not examined
    assert new["item_idx"].to_list() == [world.n_items, ds.item_ids.index("i0003")]
    assert new["clicked"].to_list() == [1, 0]
    raw = load_store_dataset(url, base=world, examined_only=False).impressions
    assert raw is not None and raw.height == world.impressions.height + 3  # no correction


def test_store_alone_and_export(tmp_path: Path) -> None:
    url = small_store(tmp_path / "s.db")
    ds = load_specs([url])
    assert ds.n_users == 2 and len(ds) == 2
    counts = export_store(url, tmp_path / "out")
    assert counts == {"events": 2, "impressions": 3, "links": 1}
    imp = pl.read_parquet(tmp_path / "out" / "impressions.parquet")
    assert imp["clicked"].to_list() == [1, 0, 0]
    assert imp["examined"].to_list() == [True, True, False]
    links = pl.read_parquet(tmp_path / "out" / "links.parquet")
    assert links["request_id"].to_list() == ["r1"]


def test_fit_cli_stacks_store_data_and_names_bad_stores(world: Dataset, tmp_path: Path) -> None:
    url = small_store(tmp_path / "s.db")
    config = write_config(tmp_path / "c.yaml", ("popular", "itemcf"))
    out = tmp_path / "art"
    args = ["fit", "-c", str(config), "--data", WORLD, "--data", url, "-o", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["artifacts"] == str(out)
    funnel = Funnel.load(out)
    assert "zed" in funnel.dataset.user_ids and "n1" in funnel.dataset.item_ids
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    bad = CliRunner().invoke(app, ["fit", "-c", str(config), "-d", missing, "-o", str(out / "x")])
    assert bad.exit_code != 0
    assert "nope.db" in str(bad.exception) + bad.output
