"""One self-contained HTML page: inline CSS, plots as base64 PNG ``data:`` URIs, no scripts
and no external references, so the file opens anywhere without network access."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from html import escape
from typing import Any

from funnelrec import __version__
from funnelrec.report import charts
from funnelrec.report.build import Report, RunReport

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em}th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:bold;background:#eef6ee}
img{max-width:100%;display:block;margin:.5em 0}.muted{color:#777}
pre{background:#f7f7f7;padding:.8em}
"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    sections = [
        _data_section(report),
        _funnel_section(report.runs),
        _stages_section(report.runs),
        _tradeoff_section(report.runs),
        _objectives_section(report.runs),
        _training_section(report.runs),
    ]
    if report.tuning:
        sections.append(_tuning_section(report.tuning))
    if len(report.runs) > 1:
        sections.append(_compare_section(report.runs))
    sections.append(_configs_section(report.runs))
    names = ", ".join(r.name for r in report.runs)
    head = (
        f"<h1>funnelrec report: {escape(report.data.name)}</h1>"
        f"<p class='muted'>protocol <b>{escape(report.protocol)}</b> · runs: {escape(names)} · "
        f"generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by funnelrec "
        f"{escape(__version__)} in {report.wall_s:.1f} s</p>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>funnelrec report: {escape(report.data.name)}</title>"
        f"<style>{CSS}</style></head><body>{head}{''.join(sections)}</body></html>\n"
    )


def _img(data: bytes, ident: str, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f"<img id='{ident}' alt='{escape(alt)}' src='data:image/png;base64,{b64}'>"


def _table(ident: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table id='{ident}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"<td class='num'>{value:.4f}</td>"
    if isinstance(value, int):
        return f"<td class='num'>{value:,}</td>"
    return f"<td>{escape(str(value))}</td>"


def _section(ident: str, title: str, body: str) -> str:
    return f"<section id='{ident}'><h2>{escape(title)}</h2>{body}</section>"


def _data_section(report: Report) -> str:
    data = report.data
    body = _table("data-table", ["", "value"], data.rows())
    body += _img(charts.popularity_chart(data), "popularity-chart", "popularity curve")
    return _section("data", "Dataset", body)


def _funnel_section(runs: Sequence[RunReport]) -> str:
    stages = charts.stage_order(runs)
    header = ["stage"]
    for run in runs:
        header += [f"{run.name}: candidates/user", f"{run.name}: test items kept"]
    rows: list[list[object]] = []
    for stage in stages:
        row: list[object] = [stage]
        for run in runs:
            found = next((s for s in run.funnel.stages if s.stage == stage), None)
            row += ["-", "-"] if found is None else [found.mean_candidates, found.test_recall]
        rows.append(row)
    users = ", ".join(f"{r.name}: {r.funnel.n_users:,} test users" for r in runs)
    body = (
        "<p>Share of the test users' test items still present after each recall channel "
        f"(at its quota), the merge, pre-rank, rank and the final slate ({escape(users)}).</p>"
        + _img(charts.funnel_chart(runs), "funnel-chart", "funnel chart")
        + _table("funnel-table", header, rows)
    )
    return _section("funnel", "Funnel", body)


def _stages_section(runs: Sequence[RunReport]) -> str:
    parts = []
    for i, run in enumerate(runs):
        keys = list(dict.fromkeys(m for s in run.stages for m in s.metrics))
        rows = [[s.stage, *[s.metrics.get(m, "-") for m in keys]] for s in run.stages]
        parts.append(f"<h3>{escape(run.name)}: first {run.k} items of each stage</h3>")
        parts.append(_table(f"stage-table-{i}", ["stage", *keys], rows))
        parts.append(_lift_html(run, i))
        final = run.final()
        parts.append(f"<h3>{escape(run.name)}: final slate</h3>")
        parts.append(_table(f"metrics-table-{i}", ["metric", "value"], list(final.items())))
    return _section("stages", "Metrics per stage", "".join(parts))


def _lift_html(run: RunReport, i: int) -> str:
    """NDCG@k after each stage (a stage that lowers it is marked) and the lift over the best
    channel alone with its bootstrap 95% interval."""
    lift = run.lift
    if not lift:
        return ""
    rows, prev = [], None
    for stage, value in lift["stage_ndcg"].items():
        mark = "lowers accuracy" if prev is not None and value < prev - 1e-12 else ""
        rows.append([stage, value, mark])
        prev = value
    best = lift["best_channel"]
    text = (
        f"<p>Final slate vs the best channel alone ({escape(best)}, NDCG@{run.k} "
        f"{lift['channel_ndcg'][best]:.4f}): {lift['diff']:+.4f} "
        f"[{lift['lo']:+.4f}, {lift['hi']:+.4f}] (bootstrap 95%), ×{lift['ratio']:.3f}.</p>"
    )
    return (
        f"<h3>{escape(run.name)}: NDCG@{run.k} after each stage</h3>"
        + _table(f"lift-table-{i}", ["stage", f"ndcg@{run.k}", "note"], rows)
        + text
    )


def _tradeoff_section(runs: Sequence[RunReport]) -> str:
    body = (
        "<p>Each point is one stage's first k items: accuracy against intra-list diversity "
        "(share of item pairs of different categories) and catalogue coverage.</p>"
        + _img(charts.tradeoff_chart(runs), "tradeoff-chart", "accuracy vs diversity/coverage")
    )
    return _section("tradeoff", "Accuracy vs diversity and coverage", body)


def _objectives_section(runs: Sequence[RunReport]) -> str:
    parts = [
        "<p>GAUC over users of each stage's score on everything pre-rank kept (scored by the "
        "ranker too): how well the stage orders the items the user went on to interact with, "
        "per objective.</p>"
    ]
    for i, run in enumerate(runs):
        stages = list(dict.fromkeys(s for row in run.objectives.values() for s in row))
        if not stages:
            parts.append(f"<p class='muted'>{escape(run.name)}: no objective to score.</p>")
            continue
        rows = [[obj, *[v.get(s, "-") for s in stages]] for obj, v in run.objectives.items()]
        parts.append(f"<h3>{escape(run.name)}</h3>")
        parts.append(_table(f"objective-table-{i}", ["objective", *stages], rows))
    return _section("objectives", "AUC per objective", "".join(parts))


def _training_section(runs: Sequence[RunReport]) -> str:
    parts = []
    for i, run in enumerate(runs):
        parts.append(f"<h3>{escape(run.name)} (fit {run.fit_s:.1f} s)</h3>")
        if not run.training:
            parts.append("<p class='muted'>No stage of this funnel uses the training loop.</p>")
            continue
        rows = [
            [
                t.model,
                t.result.epochs_run,
                t.result.best_epoch,
                "-" if t.result.best_metric is None else t.result.best_metric,
                t.result.history[-1].loss,
            ]
            for t in run.training
        ]
        header = ["model", "epochs", "best epoch", "best validation metric", "final loss"]
        parts.append(_table(f"training-table-{i}", header, rows))
        parts.append(_img(charts.training_chart(run.training), f"training-chart-{i}", "curves"))
    return _section("training", "Training curves", "".join(parts))


def _tuning_section(histories: Sequence[dict[str, Any]]) -> str:
    """Each ``funnelrec tune`` search: its figures, the history plot and the best trial."""
    from funnelrec.tune import history_png

    parts = [
        "<p>Searches by <code>funnelrec tune</code> on the validation part only (the test part "
        "is dropped before the search); trial 0 is the starting config.</p>"
    ]
    for i, h in enumerate(histories):
        trials: list[dict[str, Any]] = list(h["trials"])
        states = [t["state"] for t in trials]
        done = [t for t in trials if t["value"] is not None]
        best = max(done, key=lambda t: t["value"]) if done else None
        rows: list[list[object]] = [
            ["dataset", h["dataset"]],
            ["protocol", h["protocol"]],
            ["trials (complete / pruned)",
             f"{len(trials)} ({states.count('COMPLETE')} / {states.count('PRUNED')})"],
            [f"{h['metric']}: starting config", h["init_value"]],
            [f"{h['metric']}: best (chosen)", h["best_value"]],
            ["best trial", "-" if best is None else best["number"]],
            ["validation users", h.get("n_valid_users", "-")],
            ["search wall s", h.get("wall_s", "-")],
        ]  # fmt: skip
        parts.append(f"<h3>{escape(str(h['dataset']))}</h3>")
        parts.append(_table(f"tuning-table-{i}", ["", "value"], rows))
        parts.append(_img(history_png(dict(h)), f"tuning-chart-{i}", "search history"))
        if best is not None:
            params: list[list[object]] = [[k, v] for k, v in sorted(best["params"].items())]
            parts.append(_table(f"tuning-best-{i}", ["searched value", "best trial"], params))
    return _section("tuning", "Tuning on validation", "".join(parts))


def _compare_section(runs: Sequence[RunReport]) -> str:
    finals = [r.final() for r in runs]
    keys = list(dict.fromkeys(m for f in finals for m in f))
    body = ["<tr><th>metric</th>", *[f"<th>{escape(r.name)}</th>" for r in runs], "</tr>"]
    for key in keys:
        values = [f.get(key) for f in finals]
        present = [v for v in values if v is not None]
        best = max(present) if present else None
        cells = "".join(
            "<td>-</td>"
            if v is None
            else f"<td class='num{' best' if v == best and len(present) > 1 else ''}'>{v:.4f}</td>"
            for v in values
        )
        body.append(f"<tr><td>{escape(key)}</td>{cells}</tr>")
    fit = "".join(f"<td class='num'>{r.fit_s:.1f}</td>" for r in runs)
    body.append(f"<tr><td>fit seconds</td>{fit}</tr>")
    table = f"<table id='compare-table'>{''.join(body)}</table>"
    return _section("compare", "Runs side by side (final slate)", table)


def _configs_section(runs: Sequence[RunReport]) -> str:
    parts = [
        f"<details><summary>{escape(r.name)}</summary>"
        f"<pre>{escape(json.dumps(r.config.model_dump(mode='json'), indent=2))}</pre></details>"
        for r in runs
    ]
    return _section("configs", "Configurations", "".join(parts))
