"""The simulator: its ground truth matches the generated world, and a short closed loop runs
through the HTTP API (requests -> clicks -> impressions and events in the store -> refit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from funnelrec.config import parse_config, save_config
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.loop.simulate import SimConfig, load_sim_config, simulate
from funnelrec.loop.world import World
from funnelrec.serve.store.base import open_store
from tests.loop.conftest import config_dict, write_config


def test_world_truth_matches_the_generated_dataset(world: Dataset) -> None:
    truth = World.generate(300, 200, 6000, seed=0)
    assert np.allclose(np.round(truth.quality, 5), world.meta["true_ctr"])
    categories = world.items["category"].to_list()
    for j in range(0, 200, 37):  # same category -> same truth category
        same = [k for k in range(200) if categories[k] == categories[j]]
        assert len({int(truth.category[k]) for k in same}) == 1
    assert truth.user_id(7) == "u0007" and truth.item_index("i0042") == 42
    items = np.array([3, 4, 5])
    p = truth.click_probability(0, items, scale=1.0, exponent=1.0, floor=1.0)
    assert p == pytest.approx(truth.quality[items] / np.array([1, 2, 3]))


def test_a_short_closed_loop(tmp_path: Path) -> None:
    strategy = tmp_path / "strategy.yaml"
    cfg = config_dict(("itemcf", "popular"))
    save_config(parse_config(cfg), strategy)
    sim = SimConfig(
        n_users=120,
        n_items=100,
        n_interactions=1200,
        users_per_round=40,
        models={
            "popular": {"config": write_config(tmp_path / "pop.yaml", ("popular",))},
            "loop": {"config": strategy, "refit": True},
        },
    )
    runs = {r.name: r for r in simulate(sim, 2, tmp_path / "work", progress=lambda m: None)}
    assert len(runs["loop"].ctr) == 2 and not runs["popular"].decisions
    [decision] = runs["loop"].decisions
    assert decision["holdout_users"] > 0
    metrics = runs["loop"].metrics()
    assert {"ctr_r1", "ctr_r2", "ctr_final", "ctr_pos1", "ctr_pos10"} <= set(metrics)
    assert metrics["ctr_final"] == metrics["ctr_r2"]
    store = open_store(f"sqlite:///{tmp_path / 'work' / 'loop' / 'store.db'}")
    assert len(store.impressions()) == 2 * 40 * 10
    clicks = store.events()
    assert len(clicks) == len(store.feedback()) == round(sum(runs["loop"].clicks_at))
    store.close()


def test_bad_simulation_settings_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('rounds = 3\n[models.a]\nconfig = "missing.toml"\n')
    with pytest.raises(ConfigError, match="rounds"):
        load_sim_config(path)
    path.write_text('[models.a]\nconfig = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_sim_config(path)
