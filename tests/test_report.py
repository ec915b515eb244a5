"""HTML report on the synthetic world: self-contained (no network), with the funnel chart, the
per-stage tables, objective AUC, training curves and a side-by-side comparison that agree
with each other and with the funnel evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from funnelrec.cli import app
from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.errors import ConfigError, NotFittedError
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.report import build_report
from funnelrec.report.build import Report
from funnelrec.report.stages import objective_parts
from tests.report_html import Parsed, assert_self_contained, parse_report


def _config(channels: list[dict[str, object]]) -> dict[str, object]:
    return {
        "k": 10,
        "recall": {"total": 100, "channels": channels},
        "prerank": {"keep": 80},
        "rank": {"keep": 40},
        "rerank": [{"name": "seen_filter"}],
    }


MF_PARAMS = {"dim": 16, "epochs": 3, "lr": 0.03, "patience": 1, "refit": True, "threads": 1}
MF = {"name": "mf", "share": 0.3, "params": {**MF_PARAMS, "valid_users": 200}}
MAIN = _config([{"name": "itemcf", "share": 0.7, "weight": 3.0}, MF])
POPULAR = _config([{"name": "popular"}])


@pytest.fixture(scope="module")
def artifacts(world: Dataset, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("report")
    paths = []
    for name, raw in (("main", MAIN), ("popular", POPULAR)):
        Funnel(parse_config(raw)).fit(world).save(root / name)
        paths.append(root / name)
    return paths


@pytest.fixture(scope="module")
def built(
    world: Dataset, artifacts: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, Parsed]:
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    steps: list[str] = []
    report = build_report(artifacts, world, out, "loo", k=10, progress=steps.append)
    assert steps and steps[-1] == "rendering the HTML report"
    return report, parse_report(out.read_text(encoding="utf-8"))


def _num(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_report_is_self_contained_with_every_section(built: tuple[Report, Parsed]) -> None:
    _, html = built
    assert_self_contained(html)
    for ident in ("data", "funnel", "stages", "tradeoff", "objectives", "training", "compare"):
        assert ident in html.section_ids
    for image in ("funnel-chart", "popularity-chart", "tradeoff-chart", "training-chart-0"):
        assert len(html.images[image]) > 5_000, image
    assert "training-chart-1" not in html.images  # the popular-only funnel trains nothing


def test_dataset_and_funnel_tables_agree_with_the_evaluation(
    built: tuple[Report, Parsed], world: Dataset, world_split: Split
) -> None:
    report, html = built
    data = html.column("data-table", "value")
    assert _num(data["users"]) == world.n_users and _num(data["items"]) == world.n_items
    assert _num(data["interactions"]) == len(world)

    column = html.column("funnel-table", "main: test items kept")
    kept = {k: _num(v) for k, v in column.items() if v != "-"}
    assert list(kept)[:2] == ["recall:itemcf", "recall:mf"] and column["recall:popular"] == "-"
    assert list(kept)[-4:] == ["recall", "prerank", "rank", "rerank"]
    assert kept["recall"] >= kept["prerank"] >= kept["rank"] >= kept["rerank"] > 0
    assert kept["recall"] >= max(kept["recall:mf"], kept["recall:itemcf"])
    # the popular-only funnel has no itemcf row
    assert html.column("funnel-table", "popular: test items kept")["recall:itemcf"] == "-"

    # loo: one test item per user, so the slate (20 items) keeps recall@20 of the test items
    final = {k: _num(v) for k, v in html.column("metrics-table-0", "value").items()}
    assert kept["rerank"] == pytest.approx(final["recall@20"], abs=1e-4)
    stage10 = {k: _num(v) for k, v in html.column("stage-table-0", "recall@10").items()}
    assert stage10["rerank"] == pytest.approx(final["recall@10"], abs=1e-4)

    # the same funnel evaluated directly gives the same figures
    again = evaluate_funnel(Funnel(parse_config(MAIN)).fit(world_split.train), world_split)
    assert final["ndcg@10"] == pytest.approx(again.metrics["ndcg@10"], abs=1e-4)
    assert report.runs[0].funnel.n_users == again.n_users


def test_compare_accuracy_diversity_and_objectives(built: tuple[Report, Parsed]) -> None:
    report, html = built
    rows = {r[0]: r[1:] for r in html.tables["compare-table"][1:]}
    main, popular = (_num(v) for v in rows["recall@10"])
    assert main > popular  # item-CF + MF beat popularity on structured data
    cov_main, cov_pop = (_num(v) for v in rows["coverage@10"])
    assert cov_main > cov_pop  # popular recommends nearly one list to everyone
    div = {k: _num(v) for k, v in html.column("stage-table-1", "diversity@10").items()}
    assert all(0 <= v <= 1 for v in div.values())

    gauc = html.column("objective-table-0", "rank")
    assert set(gauc) == {"test item", "click", "like", "purchase"}
    assert _num(gauc["test item"]) > 0.6  # the funnel's own order predicts the test item
    assert report.runs[0].objectives["test item"]["rank"] == pytest.approx(
        _num(gauc["test item"]), abs=1e-4
    )


def test_training_curves_come_from_the_training_loop(built: tuple[Report, Parsed]) -> None:
    report, html = built
    runs = report.runs[0].training
    assert [r.model for r in runs] == [
        "MatrixFactorization"
    ] * 2  # early-stopped run, then the refit
    first = runs[0].result
    assert 1 <= first.epochs_run <= 3 and all(e.metric is not None for e in first.history)
    assert runs[1].result.epochs_run == first.best_epoch  # refit for the best epoch count
    table = html.tables["training-table-0"]
    assert table[1][:3] == ["MatrixFactorization", str(first.epochs_run), str(first.best_epoch)]
    assert report.runs[1].training == []


def test_objectives_follow_feedback_columns(world_split: Split) -> None:
    parts = objective_parts(world_split.test)
    assert list(parts) == ["test item", "click", "like", "purchase"]
    likes = parts["like"].interactions["like"].to_numpy()
    assert len(likes) and (likes > 0).all()
    assert len(parts["like"]) < len(parts["test item"])


def test_cli_report_json_and_errors(artifacts: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    data = "synthetic:n_users=300,n_items=200,n_interactions=6000"
    args = ["report", "--artifacts", str(artifacts[1]), "--data", data, "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["out"] == str(out) and payload["protocol"] == "loo"
    assert [s["stage"] for s in payload["runs"][0]["funnel"]][-1] == "rerank"
    assert payload["dataset"]["users"] == "300"
    assert_self_contained(parse_report(out.read_text(encoding="utf-8")))
    bad = CliRunner().invoke(app, [*args, "--protocol", "nope"])
    assert isinstance(bad.exception, ConfigError) and "nope" in str(bad.exception)
    bad_k = CliRunner().invoke(app, [*args, "--k", "0"])  # main() turns it into exit 2
    assert isinstance(bad_k.exception, ConfigError) and "k must be >= 1" in str(bad_k.exception)
    missing = CliRunner().invoke(app, [*args[:1], "--artifacts", str(tmp_path), *args[3:]])
    assert isinstance(missing.exception, NotFittedError) and str(tmp_path) in str(missing.exception)


def test_record_runs_collects_every_fit_in_its_block_only() -> None:
    import torch

    from funnelrec.train.loop import fit, record_runs

    def batches(epoch: int, rng: object) -> Iterator[dict[str, torch.Tensor]]:
        yield {"x": torch.ones(4, 2)}

    def loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["x"]).pow(2).mean()

    torch.manual_seed(0)  # the models' init below uses the global RNG: fix it (order-independent)
    fit(torch.nn.Linear(2, 1), batches, loss, epochs=1, lr=0.1)  # outside: not recorded
    with record_runs() as outer:
        fit(torch.nn.Linear(2, 1), batches, loss, epochs=2, lr=0.1)
        with record_runs() as inner:
            fit(torch.nn.Sequential(torch.nn.Linear(2, 1)), batches, loss, epochs=3, lr=0.1)
        fit(torch.nn.Linear(2, 1), batches, loss, epochs=1, lr=0.1)
    assert [(r.model, r.result.epochs_run) for r in outer] == [("Linear", 2), ("Linear", 1)]
    assert [(r.model, r.result.epochs_run) for r in inner] == [("Sequential", 3)]
    losses = [e.loss for e in outer[0].result.history]
    assert losses[1] < losses[0]  # the recorded curve is the real one: loss goes down


def test_cli_fit_json_writes_training_log(tmp_path: Path) -> None:
    config = tmp_path / "mf.toml"
    config.write_text(
        'k = 10\n[recall]\ntotal = 50\n[[recall.channels]]\nname = "mf"\n'
        "params = { dim = 8, epochs = 2, threads = 1, valid_users = 50, refit = false }\n"
    )
    out = tmp_path / "art"
    data = "synthetic:n_users=300,n_items=200,n_interactions=6000"
    res = CliRunner().invoke(app, ["fit", "-c", str(config), "-d", data, "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["artifacts"] == str(out)
    log = json.loads((out / "training_log.json").read_text())
    assert [r["model"] for r in log] == ["MatrixFactorization"]
    assert [e["epoch"] for e in log[0]["epochs"]] == list(range(1, len(log[0]["epochs"]) + 1))
    assert all(e["metric"] is not None for e in log[0]["epochs"])


def test_tuning_history_is_shown_and_bad_histories_rejected(
    built: tuple[Report, Parsed], world: Dataset, tmp_path: Path
) -> None:
    import dataclasses

    from funnelrec.report.html import render_html
    from funnelrec.tune import load_history, tune, write_outputs

    raw = {"recall": {"total": 100, "channels": [{"name": "itemcf"}, {"name": "popular"}]},
           "prerank": {"keep": 100}, "rank": {"keep": 50}}  # fmt: skip
    result = tune(raw, world, trials=2, budget_s=120, valid_users=100, seed=0)
    paths = write_outputs(result, tmp_path / "tuned.toml", world.name)
    report = dataclasses.replace(built[0], tuning=[load_history(paths["history"])])
    html = parse_report(render_html(report))
    assert_self_contained(html)
    assert "tuning" in html.section_ids and len(html.images["tuning-chart-0"]) > 5_000
    table = html.column("tuning-table-0", "value")
    assert float(table["valid ndcg@10: best (chosen)"]) == pytest.approx(result.best_value, 1e-3)
    assert table["trials (complete / pruned)"].startswith("2 (")
    (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match="not a tune history"):
        load_history(tmp_path / "other.json")
