"""CLI: demo, fit → recommend → evaluate round trip, one-line errors with non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from funnelrec import cli
from funnelrec.errors import FunnelError

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


@pytest.fixture(scope="module")
def demo_run(monkeypatch_module: pytest.MonkeyPatch) -> Any:
    """One small demo computed once; ``funnelrec demo`` then renders it (text and JSON).
    The printed layout does not depend on the world's size (same stages, k = 10)."""
    from funnelrec import demo

    result = demo.run_demo(users=300, interactions=6000)
    monkeypatch_module.setattr(demo, "run_demo", lambda *args, **kwargs: result)
    monkeypatch_module.setattr(cli.core, "console", Console(width=80, color_system=None))
    return result


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_demo_fits_one_screen(demo_run: Any) -> None:
    res = CliRunner().invoke(cli.app, ["demo", "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) <= 60, res.stdout
    assert max(len(line) for line in lines) <= 80
    text = res.stdout
    assert "Funnel evaluation" in text and "What each stage did" in text
    assert f"Slate for {demo_run.user_id} (10 items)" in text
    assert "funnelrec report" in text and "funnelrec serve" in text and "/ui" in text
    slate = demo_run.trace.explain(0)["slate"]
    assert all(entry["item"] in text for entry in slate)  # every slate item is listed
    assert ("reason" in text) == any("reason" in entry for entry in slate)  # reasons if any
    assert '"channels"' not in text  # no raw JSON trace any more


def test_demo_json_has_table_and_trace(demo_run: Any) -> None:
    res = CliRunner().invoke(cli.app, ["demo", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    stages = [row["stage"] for row in payload["report"]["stages"]]
    assert stages[-4:] == ["recall", "prerank", "rank", "rerank"]
    assert len(payload["trace"]["slate"]) == 10
    assert payload["user"] == demo_run.user_id and payload["dataset"]["n_users"] == 300
    assert all("title" in entry and "channels" in entry for entry in payload["trace"]["slate"])


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
    res = run("recommend", "--artifacts", str(artifact), "--user", "u0002", "--explain")
    assert res.returncode == 0, res.stderr
    assert "Slate for u0002 (10 items)" in res.stdout and "What each stage did" in res.stdout
    assert len(res.stdout.splitlines()) < 40


def test_fit_refuses_to_overwrite_without_force(artifact: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in artifact.iterdir())
    res = run("fit", "-c", "configs/synthetic.toml", "-d", "synthetic", "-o", str(artifact))
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"error: --out {artifact} exists (a funnel artifact); pass --force to replace it"
    )
    assert sorted(p.name for p in artifact.iterdir()) == before
    cli.refuse_overwrite(artifact, force=True)  # --force lets it through
    cli.refuse_overwrite(tmp_path / "new", force=False)  # so do a new path
    cli.refuse_overwrite(tmp_path, force=False)  # and an empty folder
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FunnelError, match="not empty"):
        cli.refuse_overwrite(tmp_path, force=False)


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
