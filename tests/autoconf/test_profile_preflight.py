"""Data profile (known answers) and the pre-flight check (every problem at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.config import load_config, parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders import load_sequences
from funnelrec.errors import ConfigError
from funnelrec.pipeline import Funnel
from funnelrec.preflight import check, ensure
from funnelrec.profile import profile, timestamp_kind

ROOT = Path(__file__).resolve().parents[2]


def bare_sequences(tmp_path: Path) -> Dataset:
    """A sequence file without attributes: no times, no feedback, no item columns."""
    path = tmp_path / "log.txt"
    rng = np.random.default_rng(0)
    lines = [" ".join(str(x) for x in [u, *rng.integers(1, 40, 6)]) for u in range(1, 61)]
    path.write_text("\n".join(lines) + "\n")
    return load_sequences(path)


def test_profile_known_answers() -> None:
    frame = pl.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "item_id": [1, 2, 1, 3, 3],
            "timestamp": [100.0, 200.0, 86_400.0 * 3, 50.0, 60.0],
            "rating": [5.0, 3.0, 4.0, 1.0, 2.0],
        }
    )
    p = profile(Dataset.from_frame(frame, feedback_cols=("rating",)))
    assert (p.n_users, p.n_items, p.n_interactions) == (2, 3, 5)
    assert p.density == pytest.approx(5 / 6)
    assert p.timestamps == "real" and p.feedback == ("rating",)
    assert p.repeat_rate == pytest.approx(2 / 5)  # a: 1 again, b: 3 again
    assert p.last_repeat_rate == pytest.approx(1.0)  # both users end on a repeat
    assert p.short_users == pytest.approx(0.5)  # b has 2 events
    assert p.seq_len["max"] == 3 and p.seq_len["min"] == 2
    assert "feedback:rating" in p.tokens and "real_timestamps" in p.tokens


def test_sequence_files_have_order_only_timestamps(tmp_path: Path) -> None:
    ds = bare_sequences(tmp_path)
    assert timestamp_kind(ds) == "order"
    p = profile(ds)
    assert p.item_columns == {} and p.feedback == () and "real_timestamps" not in p.tokens
    # a table without a time column: the row number is the time -> order only too
    frame = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 3]})
    assert timestamp_kind(Dataset.from_frame(frame, time_col=None)) == "order"


def test_preflight_lists_every_problem_of_ml100k_config_on_bare_sequences(
    tmp_path: Path,
) -> None:
    ds = bare_sequences(tmp_path)
    config = load_config(ROOT / "configs" / "ml-100k.toml")
    problems = check(config, ds)
    stages = sorted(p.stage for p in problems)
    assert stages == [
        "recall fresh",
        "recall high_ctr",
        "recall tag",
        "rerank[1] dedup",
        "rerank[2] scatter",
    ]
    with pytest.raises(ConfigError) as err:
        Funnel(config).fit(ds)  # one error, before any stage is fitted
    text = str(err.value)
    assert "5 problems" in text
    for needle in ("'title'", "'category'", "real timestamps", "'rating'", "tags"):
        assert needle in text
    assert "item columns are: none" in text


def test_fresh_refuses_order_only_timestamps(tmp_path: Path) -> None:
    raw = {"recall": {"channels": [{"name": "itemcf"}, {"name": "fresh"}]}, "rerank": []}
    with pytest.raises(ConfigError, match="recall fresh: needs real timestamps"):
        ensure(parse_config(raw), bare_sequences(tmp_path))


def test_preflight_passes_params_dependent_needs(world: Dataset) -> None:
    ok = parse_config(
        {
            "recall": {"channels": [{"name": "popular", "params": {"feedback": "like"}}]},
            "rerank": [{"name": "dedup", "params": {"key": "title"}}, {"name": "scatter"}],
        }
    )
    assert check(ok, world) == []
    bad = parse_config(
        {
            "recall": {"channels": [{"name": "popular", "params": {"feedback": "stars"}}]},
            "rerank": [{"name": "dedup", "params": {"key": "isbn"}}],
        }
    )
    missing = [p.missing for p in check(bad, world)]
    assert missing == ["feedback column 'stars'", "item column 'isbn'"]


def test_exclude_seen_false_with_seen_filter_is_a_problem(world: Dataset) -> None:
    raw = {"exclude_seen": False, "recall": {"channels": [{"name": "repeat"}]}}
    problems = check(parse_config(raw), world)  # default rerank = [seen_filter]
    assert [p.stage for p in problems] == ["rerank seen_filter"]
