"""Evaluate one or more funnel configs under a protocol and write the HTML report.

Like ``funnelrec evaluate``, each artifact's config is re-fitted on the protocol's train part
(never on test data); the training loop's per-epoch log is recorded during that fit
(``train.loop.record_runs``), so the training curves are those of the evaluated model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from funnelrec.config import FunnelConfig, load_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.data.splits import split as split_dataset
from funnelrec.errors import NotFittedError
from funnelrec.eval.funnel import FunnelReport, evaluate_funnel
from funnelrec.eval.lift import bootstrap_lift, channel_ndcg, stage_ndcg
from funnelrec.pipeline import Funnel
from funnelrec.report.stages import StageQuality, stage_quality
from funnelrec.report.summary import DataSummary, summarise
from funnelrec.train.loop import TrainingRun, record_runs

Progress = Callable[[str], None]


@dataclass
class RunReport:
    """Everything the report shows about one funnel config."""

    name: str
    config: FunnelConfig
    funnel: FunnelReport
    stages: list[StageQuality]
    objectives: dict[str, dict[str, float]]
    training: list[TrainingRun]
    fit_s: float
    k: int
    lift: dict[str, Any] = field(default_factory=dict)

    def final(self) -> dict[str, float]:
        """Final-slate metrics: ``evaluate_funnel``'s, plus the slate's beyond-accuracy ones."""
        slate = next((s.metrics for s in self.stages if s.stage == "rerank"), {})
        extra = {m: v for m, v in slate.items() if m.split("@")[0] in BEYOND_ACCURACY}
        return {**self.funnel.metrics, **extra}


BEYOND_ACCURACY = ("coverage", "diversity", "novelty")


@dataclass
class Report:
    """A whole report: the data, the protocol and one or more runs (the first is the main)."""

    data: DataSummary
    protocol: str
    runs: list[RunReport]
    wall_s: float
    tuning: list[dict[str, Any]] = field(default_factory=list)  # ``funnelrec tune`` histories


def evaluate_run(
    name: str, config: FunnelConfig, parts: Split, k: int = 10, progress: Progress | None = None
) -> RunReport:
    """Fit ``config`` on ``parts.train`` (recording training curves) and measure every stage."""
    say = progress or (lambda _: None)
    say(f"{name}: fitting on the train part")
    start = time.perf_counter()
    with record_runs() as runs:
        funnel = Funnel(config).fit(parts.train)
    fit_s = time.perf_counter() - start
    say(f"{name}: evaluating the funnel stage by stage")
    report = evaluate_funnel(funnel, parts)
    say(f"{name}: top-{k} quality and objective AUC per stage")
    stages, objectives = stage_quality(funnel, parts, k)
    say(f"{name}: NDCG@{k} after each stage, each channel alone, lift over the best")
    lift = lift_summary(funnel, parts, k)
    return RunReport(name, config, report, stages, objectives, list(runs), fit_s, k, lift)


def lift_summary(funnel: Funnel, parts: Split, k: int) -> dict[str, Any]:
    """NDCG@``k`` after each stage and the final slate's lift over the best channel alone
    (paired bootstrap 95% interval over test users)."""
    stages = stage_ndcg(funnel, parts, k)
    channels = channel_ndcg(funnel, parts, k)
    means = {c: float(np.nanmean(v)) for c, v in channels.items()}
    best = max(means, key=lambda c: means[c])
    lift = bootstrap_lift(stages["final"], channels[best])
    return {
        "stage_ndcg": {s: float(np.nanmean(v)) for s, v in stages.items()},
        "channel_ndcg": means,
        "best_channel": best,
        **lift.as_dict(),
    }


def build_report(
    artifacts: Sequence[Path],
    dataset: Dataset,
    out: Path,
    protocol: str = "loo",
    k: int = 10,
    progress: Progress | None = None,
    tuning: Sequence[Path] = (),
) -> Report:
    """Evaluate every artifact's config on ``dataset`` under ``protocol`` and write ``out``
    (atomically: a temporary file, then a rename); ``tuning``: search histories written by
    ``funnelrec tune`` (``<stem>.history.json``) to show beside the runs."""
    from funnelrec.report.html import render_html
    from funnelrec.tune import load_history

    if not artifacts:
        raise ValueError("build_report needs at least one artifact directory")
    histories = [load_history(path) for path in tuning]  # bad files fail before any fit
    start = time.perf_counter()
    parts = split_dataset(dataset, protocol)
    runs: list[RunReport] = []
    for path in artifacts:
        config = _artifact_config(Path(path))
        runs.append(evaluate_run(_run_name(path, runs), config, parts, k, progress))
    report = Report(summarise(dataset), protocol, runs, 0.0, histories)
    report.wall_s = time.perf_counter() - start
    if progress:
        progress("rendering the HTML report")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(out)
    return report


def _artifact_config(path: Path) -> FunnelConfig:
    """The config of a funnel artifact (without loading its stages)."""
    if not (path / "meta.json").is_file():
        raise NotFittedError(f"{path} is not a funnel artifact (no meta.json)")
    return load_config(path / "config.yaml")


def _run_name(path: Path, earlier: Sequence[RunReport]) -> str:
    name = path.name or str(path)
    taken = {r.name for r in earlier}
    return name if name not in taken else f"{name} ({len(earlier) + 1})"


def report_json(report: Report) -> dict[str, Any]:
    """Machine-readable summary of a report (``funnelrec report --json``)."""
    return {
        "dataset": dict(report.data.rows()),
        "protocol": report.protocol,
        "wall_s": round(report.wall_s, 3),
        "runs": [
            {
                "name": r.name,
                "n_users": r.funnel.n_users,
                "fit_s": round(r.fit_s, 3),
                "funnel": [vars(s) for s in r.funnel.stages],
                "metrics": r.final(),
                "stages": {s.stage: s.metrics for s in r.stages},
                "lift": r.lift,
                "objective_gauc": r.objectives,
                "training": [
                    {"model": t.model, "epochs": [vars(e) for e in t.result.history]}
                    for t in r.training
                ],
            }
            for r in report.runs
        ],
    }
