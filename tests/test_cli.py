"""CLI: demo, fit → recommend → evaluate round trip, one-line errors with non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funnelrec.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "art"
    res = run(
        "fit",
        "--config",
        "configs/synthetic.toml",
        "--data",
        "synthetic:n_users=300,n_items=200,n_interactions=6000",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    return out


def test_demo_json_has_table_and_trace() -> None:
    res = run("demo", "--users", "300", "--interactions", "6000", "--json")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    stages = [row["stage"] for row in payload["report"]["stages"]]
    assert stages[-4:] == ["recall", "prerank", "rank", "rerank"]
    assert len(payload["trace"]["slate"]) == 10


def test_recommend_known_and_unknown_user(artifact: Path) -> None:
    res = run(
        "recommend",
        "--artifacts",
        str(artifact),
        "--user",
        "u0001",
        "--user",
        "nobody",
        "--k",
        "5",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [len(e["items"]) for e in out] == [5, 5]


def test_recommend_explain(artifact: Path) -> None:
    res = run("recommend", "--artifacts", str(artifact), "--user", "u0002", "--explain", "--json")
    assert res.returncode == 0, res.stderr
    assert "merged" in json.loads(res.stdout)[0]["trace"]


def test_evaluate_json(artifact: Path) -> None:
    res = run(
        "evaluate",
        "--artifacts",
        str(artifact),
        "--data",
        "synthetic:n_users=300,n_items=200,n_interactions=6000",
        "--protocol",
        "rs811",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"]["ndcg@10"] > 0


def test_bad_config_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[recall]\nbogus = 1\n[[recall.channels]]\nname = "popular"\n')
    res = run("fit", "--config", str(bad), "--data", "synthetic", "--out", str(tmp_path / "a"))
    assert res.returncode != 0
    assert "unknown key 'recall.bogus'" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_artifact_and_bad_protocol(tmp_path: Path, artifact: Path) -> None:
    res = run("recommend", "--artifacts", str(tmp_path / "none"), "--user", "u1")
    assert res.returncode != 0 and "not a funnel artifact" in res.stderr
    res = run("evaluate", "--artifacts", str(artifact), "--data", "synthetic", "--protocol", "x")
    assert res.returncode != 0 and "unknown protocol 'x'" in res.stderr
