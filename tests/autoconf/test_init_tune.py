"""``init`` writes a config that fits the data it was made for; ``tune`` searches on validation
only and never scores worse than its starting config there."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.config import load_config, parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders import load_dataset
from funnelrec.data.splits import split
from funnelrec.errors import DataError
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.init_config import Proposal, propose, render, write_config
from funnelrec.pipeline import Funnel
from funnelrec.preflight import check
from funnelrec.profile import profile
from funnelrec.tune import parse_budget, tune, write_outputs

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FOLDERS = sorted(p.name for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []


def first_users(ds: Dataset, n: int) -> Dataset:
    """The first ``n`` users' interactions (whole catalogue): fast fits of the same config."""
    return ds.with_interactions(ds.interactions.filter(pl.col("user_idx") < n))


@pytest.mark.parametrize("folder", FOLDERS)
def test_init_on_every_shared_dataset_fits_and_evaluates(folder: str, tmp_path: Path) -> None:
    try:
        dataset = load_dataset(SHARED / folder)
    except DataError as exc:  # CTR tables, multi-label files: not an interaction log
        assert folder in str(exc)
        return
    out = tmp_path / "config.toml"
    if len(dataset) == 0:  # a catalogue without events: one clear line
        with pytest.raises(DataError, match="no interactions"):
            write_config(dataset, out)
        return
    write_config(dataset, out, effort="quick")
    config = load_config(out)  # as written, no edits
    assert check(config, dataset) == []
    parts = split(first_users(dataset, 100), "loo")
    funnel = Funnel(config).fit(parts.train, valid=parts.valid)
    report = evaluate_funnel(funnel, parts, consistency_k=None)
    assert report.n_users > 0 and 0.0 <= report.metrics["ndcg@10"] <= 1.0


def test_init_uses_only_what_the_data_has(world: Dataset, tmp_path: Path) -> None:
    rich = propose(profile(world)).config
    names = [c["name"] for c in rich["recall"]["channels"]]
    assert {"itemcf", "popular", "tag", "high_ctr", "fresh"} <= set(names)
    assert {"als", "ease"} <= set(names)  # the global-preference channels
    assert [r["name"] for r in rich["rerank"]] == ["seen_filter", "dedup"]
    assert '# name = "scatter"' in render(propose(profile(world)))  # diversity: opt-in
    assert rich["rank"]["name"] == "lambdamart" and rich["fit"]["stacking"] == "oof"
    assert sum(c["share"] for c in rich["recall"]["channels"]) == pytest.approx(1, abs=1e-3)
    path = tmp_path / "seq.txt"
    path.write_text("\n".join(f"{u} " + " ".join(map(str, range(u, u + 8))) for u in range(30)))
    bare = propose(profile(load_dataset(path))).config
    names = [c["name"] for c in bare["recall"]["channels"]]
    assert "fresh" not in names and "high_ctr" not in names and "tag" not in names
    assert [r["name"] for r in bare["rerank"]] == ["seen_filter"]


def test_init_adds_repeat_channel_when_users_come_back() -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 20)
    frame = pl.DataFrame(
        {"user_id": users, "item_id": rng.integers(0, 8, len(users)), "timestamp": 0.0}
    )
    proposal = propose(profile(Dataset.from_frame(frame)))
    cfg = parse_config(tomllib.loads(render(proposal)))
    assert cfg.exclude_seen is False
    assert cfg.recall.channels[0].name == "repeat"
    assert all(r.name != "seen_filter" for r in cfg.rerank)
    assert "repeat rate" in render(proposal)


def test_init_refuses_to_overwrite(world: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "c.toml"
    out.write_text("x")
    with pytest.raises(DataError, match="--force"):
        write_config(world, out)


def test_parse_budget() -> None:
    assert parse_budget("30m") == 1800 and parse_budget("1h") == 3600
    assert parse_budget("90") == 90
    with pytest.raises(Exception, match="budget"):
        parse_budget("soon")


def test_tune_on_validation_only(world: Dataset, tmp_path: Path) -> None:
    raw = {
        "recall": {
            "total": 100,
            "channels": [{"name": "itemcf"}, {"name": "usercf"}, {"name": "popular"}],
        },
        "prerank": {"keep": 100},
        "rank": {"keep": 50},
    }
    # the test part must not matter: change every test item, the search must not notice
    keys = ["user_idx", "item_idx", "timestamp"]
    test_keys = split(world, "loo").test.interactions.select(keys).with_columns(hit=True)
    frame = world.interactions.join(test_keys, on=keys, how="left", maintain_order="left")
    moved = (pl.col("item_idx") + 1) % world.n_items
    changed = frame.with_columns(
        item_idx=pl.when(pl.col("hit")).then(moved).otherwise(pl.col("item_idx"))
    ).drop("hit")
    other = world.with_interactions(changed)
    assert not split(other, "loo").test.interactions.equals(split(world, "loo").test.interactions)
    a = tune(raw, world, trials=3, budget_s=120, valid_users=150, seed=1)
    b = tune(raw, other, trials=3, budget_s=120, valid_users=150, seed=1)
    assert a.n_trials == 3 and a.best_value >= a.init_value
    assert [t["value"] for t in a.trials] == [t["value"] for t in b.trials]
    paths = write_outputs(a, tmp_path / "tuned.toml", world.name)
    tuned = load_config(paths["config"])
    assert tuned.recall.total in (100, 150, 200, 300)
    history = json.loads(paths["history"].read_text())
    assert len(history["trials"]) == 3 and history["metric"] == "valid ndcg@10"
    assert paths["plot"].stat().st_size > 0


def test_tune_space_searches_lambdamart_and_trial_zero_is_the_config(world: Dataset) -> None:
    import optuna

    from funnelrec.tune import LAMBDAMART_SPACE, space, starting_point

    raw = tomllib.loads(render(propose(profile(world))))
    point = starting_point(raw)
    assert {f"rank.{name}" for name in LAMBDAMART_SPACE} <= set(point)
    again = space(optuna.trial.FixedTrial(point), raw)  # trial 0 = the starting config
    for name in LAMBDAMART_SPACE:
        assert again["rank"]["params"][name] == pytest.approx(
            parse_config(raw).rank.params.get(name, point[f"rank.{name}"]), rel=1e-6
        )
    assert parse_config(again).rank.name == "lambdamart"
    assert "{  }" not in render(Proposal(config=again))  # no empty inline tables


def test_tune_an_init_config_shares_fits_between_trials(world: Dataset) -> None:
    """The LambdaMART funnel ``init`` writes tunes end to end; trials reuse fitted channels."""
    from funnelrec.stacking import FitMemo

    raw = tomllib.loads(render(propose(profile(world), effort="quick")))
    memo = FitMemo()
    result = tune(raw, world, trials=3, budget_s=300, valid_users=100, seed=0, memo=memo)
    assert result.n_trials == 3 and result.best_value >= result.init_value
    assert memo.hits > 0  # later trials got fitted channels (or lists) from the memo
    assert parse_config(result.config).rank.name in ("lambdamart", "passthrough")
