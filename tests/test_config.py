"""Config parsing: unknown keys and bad values are errors naming them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from funnelrec.config import load_config, parse_config, save_config
from funnelrec.errors import ConfigError

BASE = {"recall": {"channels": [{"name": "popular", "quota": 50}]}}


def test_unknown_top_level_key_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown key 'rankk'"):
        parse_config({**BASE, "rankk": {}})


def test_unknown_stage_param_is_named() -> None:
    raw = {"recall": {"channels": [{"name": "popular", "params": {"half_life": 3}}]}}
    with pytest.raises(ConfigError, match="unknown key 'half_life'"):
        parse_config(raw)


def test_unknown_stage_name() -> None:
    with pytest.raises(ConfigError, match="unknown recall stage 'nope'"):
        parse_config({"recall": {"channels": [{"name": "nope"}]}})


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match="'k'"):
        parse_config({**BASE, "k": 0})


def test_duplicate_channel_ids_rejected() -> None:
    with pytest.raises(ConfigError, match="unique"):
        parse_config({"recall": {"channels": [{"name": "popular"}, {"name": "popular"}]}})


def test_quotas_shares_and_rest() -> None:
    cfg = parse_config(
        {
            "recall": {
                "total": 100,
                "channels": [
                    {"name": "popular", "alias": "a", "share": 0.5},
                    {"name": "popular", "alias": "b", "quota": 10},
                    {"name": "popular", "alias": "c"},
                    {"name": "popular", "alias": "d"},
                ],
            }
        }
    )
    assert cfg.recall.quotas() == {"a": 50, "b": 10, "c": 20, "d": 20}


def test_resolved_round_trip(tmp_path: Path) -> None:
    cfg = parse_config(BASE)
    params = cfg.recall.channels[0].params
    assert params["half_life_days"] is None and params["window_days"] is None  # defaults filled
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_toml_file_and_parse_error(tmp_path: Path) -> None:
    good = tmp_path / "f.toml"
    good.write_text('k = 5\n[recall]\n[[recall.channels]]\nname = "popular"\n')
    assert load_config(good).k == 5
    bad = tmp_path / "bad.toml"
    bad.write_text("k = = 5\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: cannot parse"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def channels(total: int, *specs: dict[str, object]) -> dict[str, object]:
    chans = [{"name": "popular", "alias": f"c{i}", **s} for i, s in enumerate(specs)]
    return {"recall": {"total": total, "channels": chans}}


def test_shares_over_one_rejected_naming_the_channels() -> None:
    with pytest.raises(ConfigError, match=r"shares sum to 1.05 > 1 \(c0=0.35, c1=0.7\)"):
        parse_config(channels(300, {"share": 0.35}, {"share": 0.7}))


def test_quotas_over_total_rejected_naming_the_channels() -> None:
    with pytest.raises(ConfigError, match=r"ask for 12 items but total = 10 \(c0=6, c1=6\)"):
        parse_config(channels(10, {"quota": 6}, {"quota": 6}))
    with pytest.raises(ConfigError, match=r"ask for 11 items but total = 10 \(c0=6, c1=5\)"):
        parse_config(channels(10, {"quota": 6}, {"share": 0.5}))


def test_channels_without_share_split_the_rest_or_are_rejected() -> None:
    cfg = parse_config(channels(10, {"quota": 3}, {}, {}))
    assert cfg.recall.quotas() == {"c0": 3, "c1": 4, "c2": 3}  # first free channel takes the 1
    assert sum(cfg.recall.quotas().values()) == 10
    with pytest.raises(ConfigError, match=r"channels c1, c2 have no quota or share, but only 1"):
        parse_config(channels(10, {"quota": 9}, {}, {}))


def test_shipped_configs_fit_their_budget() -> None:
    root = Path(__file__).resolve().parents[1]
    demo = root / "src" / "funnelrec" / "configs" / "demo.toml"
    files = [*sorted((root / "configs").glob("*.toml")), demo]
    for path in files:
        if "recall" not in tomllib.loads(path.read_text()):
            continue  # not a funnel config (e.g. the simulator's)
        recall = load_config(path).recall
        assert sum(recall.quotas().values()) <= recall.total, path.name


def test_shares_rounded_to_four_decimals_still_fit() -> None:
    cfg = parse_config(channels(10_000, {"share": 0.3334}, {"share": 0.3333}, {"share": 0.3334}))
    assert sum(cfg.recall.quotas().values()) <= 10_000
