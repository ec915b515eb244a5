"""CLI: ``profile``, ``init``, ``evaluate --config`` and ``tune`` end to end on a small log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = "synthetic:n_users=200,n_items=150,n_interactions=3000"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funnelrec.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_profile_json_and_table() -> None:
    res = run("profile", "--data", DATA, "--json")
    assert res.returncode == 0, res.stderr
    prof = json.loads(res.stdout)
    assert prof["n_users"] == 200 and prof["timestamps"] == "real"
    assert "title" in prof["item_columns"] and prof["impressions"] > 0
    table = run("profile", "--data", DATA)
    assert table.returncode == 0 and "repeat rate" in table.stdout


def test_init_then_evaluate_config_then_tune(tmp_path: Path) -> None:
    cfg = tmp_path / "funnel.toml"
    res = run("init", "--data", DATA, "--out", str(cfg), "--quick")
    assert res.returncode == 0, res.stderr
    assert cfg.read_text().startswith("# Funnel for")
    res = run("evaluate", "--config", str(cfg), "--data", DATA, "--json")
    assert res.returncode == 0, res.stderr
    assert 0.0 <= json.loads(res.stdout)["metrics"]["ndcg@10"] <= 1.0
    out = tmp_path / "tuned.toml"
    res = run(
        "tune", "--config", str(cfg), "--data", DATA, "--trials", "2", "--budget", "5m",
        "--out", str(out), "--valid-users", "100", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["trials"] == 2 and summary["valid_ndcg@10"] >= summary["init_valid_ndcg@10"]
    assert out.is_file() and (tmp_path / "tuned.history.json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("evaluate", "--data", DATA), "exactly one of --config or --artifacts"),
        (("tune", "--config", "configs/ml-100k.toml", "--data", DATA, "--budget", "x"), "budget"),
    ],
)
def test_bad_input_one_line(args: tuple[str, ...], needle: str) -> None:
    res = run(*args)
    assert res.returncode == 2 and needle in res.stderr


def test_fit_fails_once_with_every_problem(tmp_path: Path) -> None:
    seq = tmp_path / "log.txt"
    seq.write_text("\n".join(f"{u} " + " ".join(map(str, range(u, u + 6))) for u in range(40)))
    res = run("fit", "-c", "configs/ml-100k.toml", "--data", str(seq), "-o", str(tmp_path / "a"))
    assert res.returncode == 2
    assert "5 problems" in res.stderr and "recall fresh" in res.stderr
