"""benchmarks/reproduce.py: which metrics are compared and how a re-run row is judged."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(model: str, **metrics: float) -> dict[str, object]:
    return {"dataset": "d", "protocol": "loo", "model": model, "stage": "recall",
            "metrics": metrics}  # fmt: skip


def test_cost_metrics_are_not_compared() -> None:
    quality = _module().quality_metrics({
        "ndcg@10": 0.1, "hit@10": 0.2, "auc": 0.7, "events": 5.0, "cpu_s": 1.0, "fit_s": 2.0,
        "pairs_per_s": 3.0, "p99_ms": 4.0, "cpu_per_wall": 1.9, "threads": 2.0, "peak_mb": 1.0,
        "time_vs_peer": 1.2, "speedup": 2.0, "qps": 9.0, "ms_per_request_rank": 0.1,
    })  # fmt: skip
    assert quality == {"ndcg@10": 0.1, "hit@10": 0.2, "auc": 0.7, "events": 5.0}


def test_rows_are_judged_on_quality_metrics_at_recorded_decimals() -> None:
    compare = _module().compare
    recorded = [_row("a", **{"ndcg@10": 0.1362, "cpu_s": 5.0}), _row("b", **{"ndcg@10": 0.05}),
                _row("c", **{"ndcg@10": 0.07}), _row("d", **{"cpu_s": 1.0})]  # fmt: skip
    now = [_row("a", **{"ndcg@10": 0.1362, "cpu_s": 9.0}), _row("b", **{"ndcg@10": 0.0501}),
           _row("d", **{"cpu_s": 2.0})]  # fmt: skip
    verdicts = {v["row"][2]: v for v in compare(recorded, now)}
    assert verdicts["a"]["verdict"] == "same"
    assert verdicts["b"]["verdict"] == "differs"
    assert verdicts["b"]["diff"] == {"ndcg@10": [0.05, 0.0501]}
    assert verdicts["c"]["verdict"] == "missing"
    assert verdicts["d"]["verdict"] == "cost-only"


def test_update_replaces_rows_by_key_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import harness

    module = _module()
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    recorded = [_row("a", **{"ndcg@10": 0.1}), _row("b", **{"ndcg@10": 0.2})]
    (tmp_path / "recall.json").write_text(json.dumps({"rows": recorded}))
    module.update("recall", [_row("b", **{"ndcg@10": 0.25})])
    rows = json.loads((tmp_path / "recall.json").read_text())["rows"]
    assert sorted((r["model"], r["metrics"]["ndcg@10"]) for r in rows) == [("a", 0.1), ("b", 0.25)]


def test_environment_differences_are_named_and_dates_ignored() -> None:
    module = _module()
    old = {**_row("a"), "env": {"date": "2026-12-06", "commit": "abc", "numpy": "2.3.1",
                                "lightgbm": "4.7.0", "cpu_isa": "avx2"}}  # fmt: skip
    new = {**_row("a"), "env": {"date": "2026-12-07", "commit": "def", "numpy": "2.4.6",
                                "lightgbm": "4.7.0", "cpu_isa": "avx512f"}}  # fmt: skip
    diff = module.environment_diff([old], [new])
    assert diff == {"cpu_isa": ["avx2", "avx512f"], "numpy": ["2.3.1", "2.4.6"]}
    assert module.describe_environment(diff) == (
        "environment: cpu_isa avx2 -> avx512f, numpy 2.3.1 -> 2.4.6"
    )
    assert module.environment_diff([old], [{**new, "env": old["env"]}]) == {}
    assert "same libraries" in module.describe_environment({})
    assert module.environment_diff([_row("a")], [new]) is None
    assert "not recorded" in module.describe_environment(None)


def test_verdicts_written_meanwhile_by_another_run_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys
    from collections import OrderedDict

    module = _module()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"old command": {"verdict": "same"}}))
    monkeypatch.setattr(module, "REPORT", report)
    plan = OrderedDict([("python benchmarks/x.py", {"file": "x", "rows": [], "wall": 1.0})])
    monkeypatch.setattr(module, "plan", lambda files, max_wall: plan)

    def run(command: str, entry: object, timeout: float) -> dict[str, object]:
        # another reproduce.py finishes its command while this one runs
        other = json.loads(report.read_text())
        other["other command"] = {"verdict": "differs"}
        report.write_text(json.dumps(other))
        return {"verdict": "same", "seconds": 1.0, "rows": []}

    monkeypatch.setattr(module, "run", run)
    monkeypatch.setattr(sys, "argv", ["reproduce.py"])
    module.main()
    assert set(json.loads(report.read_text())) == {
        "old command", "other command", "python benchmarks/x.py"
    }  # fmt: skip


def test_rows_record_the_cpus_matrix_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two avx512f machines, one with AMX, train models that differ in their last decimals:
    ``cpu_matrix`` tells them apart (``cpu_isa`` alone called them the same CPU)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import harness

    old = {"fpu", "avx2", "avx512f", "avx512_bf16"}
    new = old | {"amx_bf16", "amx_tile"}
    assert harness.cpu_features(old) == {"cpu_isa": "avx512f", "cpu_matrix": "avx512_bf16"}
    assert harness.cpu_features(new) == {"cpu_isa": "avx512f", "cpu_matrix": "avx512_bf16+amx_bf16"}
    assert harness.cpu_features({"avx2"}) == {"cpu_isa": "avx2", "cpu_matrix": "none"}
    assert harness.cpu_features(set()) == {"cpu_isa": "other", "cpu_matrix": "none"}
    module = _module()
    rows = [{**_row("a"), "env": harness.cpu_features(f)} for f in (old, new)]
    assert module.environment_diff(rows[:1], rows[1:]) == {
        "cpu_matrix": ["avx512_bf16", "avx512_bf16+amx_bf16"]
    }
