"""Command line: ``funnelrec demo | fit | evaluate | recommend | serve | report | export |
refit | simulate``.

Thin typer commands over the library. Errors print one clear line and exit non-zero;
``--json`` prints machine-readable output.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from funnelrec.config import load_config
from funnelrec.data.splits import split as split_dataset
from funnelrec.errors import FunnelError
from funnelrec.eval.funnel import FunnelReport, evaluate_funnel
from funnelrec.pipeline import Funnel

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="funnelrec: recall → pre-rank → rank → re-rank, trained and evaluated.",
)
console = Console()
progress_console = Console(stderr=True)  # progress never mixes with --json on stdout

DataOpt = Annotated[str, typer.Option("--data", "-d", help="dataset folder/file or 'synthetic'")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
DataSpecs = Annotated[
    list[str],
    typer.Option(
        "--data",
        "-d",
        help="dataset folder/file, 'synthetic' or a store URL (sqlite:///..., redis://...); "
        "repeat to stack store data on a base dataset",
    ),
]


def _load_data(spec: str) -> Any:
    from funnelrec.data.loaders import load_dataset

    return load_dataset(spec)


def demo_config_path() -> Path:
    return Path(str(resources.files("funnelrec") / "configs" / "demo.toml"))


def report_table(report: FunnelReport, title: str) -> Table:
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("candidates/user", justify="right")
    table.add_column("test items kept", justify="right")
    for row in report.stages:
        table.add_row(row.stage, f"{row.mean_candidates:.1f}", f"{row.test_recall:.4f}")
    return table


def metrics_table(values: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, f"{value:.4f}")
    return table


def _report_json(report: FunnelReport) -> dict[str, Any]:
    return {
        "stages": [vars(r) for r in report.stages],
        "metrics": report.metrics,
        "n_users": report.n_users,
        "wall_s": report.wall_s,
        "cold_metrics": report.cold_metrics,
        "n_cold_users": report.n_cold_users,
    }


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="synthetic users")] = 2000,
    interactions: Annotated[int, typer.Option(help="synthetic interactions")] = 100_000,
    config: Annotated[Path | None, typer.Option(help="funnel config (default: built-in)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Synthetic world → fit the funnel → stage-by-stage evaluation → one traced slate."""
    from funnelrec.data.synthetic import generate

    with console.status("generating the synthetic world"):
        dataset = generate(n_users=users, n_interactions=interactions, seed=0)
    parts = split_dataset(dataset, "loo")
    funnel = Funnel(load_config(config or demo_config_path()))
    with console.status("fitting the funnel"):
        funnel.fit(parts.train, valid=parts.valid)
    report = evaluate_funnel(funnel, parts)
    user = parts.test_users()[:1]
    trace = funnel.run(parts.test_query(user, funnel.config.k))
    explanation = trace.explain(0, dataset.item_ids, top=5)
    user_id = dataset.user_ids.external(user)[0]
    if as_json:
        print(
            json.dumps(
                {"report": _report_json(report), "user": user_id, "trace": explanation}, indent=2
            )
        )
        return
    console.print(
        f"[bold]{dataset.name}[/]: {dataset.n_users} users, {dataset.n_items} items, "
        f"{len(dataset)} interactions; protocol loo"
    )
    console.print(
        report_table(report, f"Funnel evaluation ({report.n_users} users, {report.wall_s:.2f} s)")
    )
    console.print(metrics_table(report.metrics, "Final slate"))
    console.print(f"\n[bold]Recommendations for user {user_id}[/] (trace):")
    console.print_json(data=explanation)


@app.command()
def fit(
    config: Annotated[Path, typer.Option("--config", "-c", help="funnel config (.toml/.yaml)")],
    data: DataSpecs,
    out: Annotated[Path, typer.Option("--out", "-o", help="artifact directory")],
    as_json: JsonOpt = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="under torchrun: DDP training (batch_size per process), rank 0 saves",
        ),
    ] = False,
) -> None:
    """Fit a funnel on a dataset and save the artifact directory (with its training log).

    Distributed: ``torchrun --nproc_per_node=N -m funnelrec fit --distributed ...``.
    """
    import time

    from funnelrec.train import distributed as dist
    from funnelrec.train.loop import record_runs

    funnel = Funnel(load_config(config))
    if distributed:
        dist.init()
    main_rank = dist.is_main()  # only rank 0 shows progress and writes the artifact
    try:
        from funnelrec.loop.data import load_specs

        with progress_console.status(f"loading {data}") if main_rank else nullcontext():
            dataset = load_specs(data)
        start = time.perf_counter()
        status = progress_console.status(f"fitting on {dataset.name}")
        with status if main_rank else nullcontext(), record_runs() as runs:
            funnel.fit(dataset)
        fit_s = time.perf_counter() - start
        if not main_rank:
            return
        funnel.save(out)
        log = [{"model": r.model, "epochs": [vars(e) for e in r.result.history]} for r in runs]
        (out / "training_log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
        if as_json:
            print(json.dumps({"artifacts": str(out), "dataset": dataset.name, "fit_s": fit_s}))
            return
        console.print(f"saved funnel to {out} (fit {fit_s:.1f} s)")
    finally:
        dist.shutdown()


@app.command()
def evaluate(
    artifacts: Annotated[
        Path, typer.Option("--artifacts", "-a", help="a fitted funnel (its config)")
    ],
    data: DataOpt,
    protocol: Annotated[str, typer.Option("--protocol", "-p")] = "loo",
    as_json: JsonOpt = False,
) -> None:
    """Re-fit the artifact's config on the protocol's train part and evaluate every stage."""
    config = Funnel.load(artifacts).config
    with progress_console.status(f"loading {data}"):
        parts = split_dataset(_load_data(data), protocol)
    with progress_console.status("fitting on the train part"):
        funnel = Funnel(config).fit(parts.train, valid=parts.valid)
    with progress_console.status("evaluating every stage"):
        report = evaluate_funnel(funnel, parts)
    if as_json:
        print(json.dumps(_report_json(report), indent=2))
        return
    console.print(report_table(report, f"Funnel evaluation, {protocol} ({report.n_users} users)"))
    console.print(metrics_table(report.metrics, "Final slate"))


@app.command()
def recommend(
    artifacts: Annotated[Path, typer.Option("--artifacts", "-a")],
    user: Annotated[list[str], typer.Option("--user", "-u", help="external user id (repeatable)")],
    k: Annotated[int | None, typer.Option(help="slate size")] = None,
    explain: Annotated[bool, typer.Option(help="include the funnel trace")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recommend for users of a saved funnel (unknown users get cold-start results)."""
    funnel = Funnel.load(artifacts)
    ids = funnel.dataset.user_ids
    resolved: list[str | int] = [
        u if u in ids else int(u) if u.isdigit() and int(u) in ids else u for u in user
    ]
    trace = funnel.run(funnel.query_for(resolved, k))
    assert trace.slate is not None
    out = []
    for row, uid in enumerate(user):
        items, scores = trace.slate.row(row)
        entry: dict[str, Any] = {
            "user": uid,
            "items": funnel.dataset.item_ids.external(items),
            "scores": [round(float(s), 6) for s in scores],
        }
        if explain:
            entry["trace"] = trace.explain(row, funnel.dataset.item_ids)
        out.append(entry)
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for entry in out:
        console.print(f"[bold]{entry['user']}[/]: {entry['items']}")
        if explain:
            console.print_json(data=entry["trace"])


@app.command()
def serve(
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", "-a", help="funnel artifact directory")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="sqlite:///rel.db | sqlite:////abs.db | redis://host:port/db"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    settings_file: Annotated[
        Path | None, typer.Option("--settings", help="settings file (.toml/.yaml/.json)")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="uvicorn worker processes (share state via the store)")
    ] = 1,
    refit_every: Annotated[
        str | None, typer.Option(help="refit on the store's data every (e.g. 6h), guarded")
    ] = None,
    candidate: Annotated[
        Path | None, typer.Option(help="a second artifact served to --share of users")
    ] = None,
    share: Annotated[float | None, typer.Option(help="share of users on --candidate")] = None,
    interleave: Annotated[
        bool | None, typer.Option(help="team-draft interleave the candidate instead")
    ] = None,
) -> None:
    """Serve a saved funnel over HTTP (settings also from FUNNELREC_* env vars)."""
    import uvicorn

    from funnelrec.loop.refit import parse_duration
    from funnelrec.serve import create_app, load_settings

    flags: dict[str, Any] = dict(artifacts=artifacts, store=store, host=host, port=port)
    flags.update(candidate=candidate, share=share, interleave=interleave)
    flags["refit_every_s"] = parse_duration(refit_every) if refit_every else None
    settings = load_settings(settings_file, **flags)
    if workers > 1:
        _serve_workers(settings_file, workers, **flags)
        return
    api = create_app(settings)
    uvicorn.run(
        api,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )


def _serve_workers(settings_file: Path | None, workers: int, **flags: Any) -> None:
    """``workers`` uvicorn processes, each building the app from the environment (flags and
    the settings file passed through ``FUNNELREC_*``)."""
    import os

    import uvicorn

    from funnelrec.serve import load_settings
    from funnelrec.serve.settings import ENV_PREFIX

    if settings_file is not None:
        os.environ[f"{ENV_PREFIX}SETTINGS_FILE"] = str(settings_file.resolve())
    for key, value in flags.items():
        if value is not None:
            os.environ[f"{ENV_PREFIX}{key.upper()}"] = str(value)
    settings = load_settings()
    uvicorn.run(
        "funnelrec.serve.workers:app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )


@app.command()
def report(
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", "-a", help="a fitted funnel (its config)")
    ] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="dataset spec")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write")] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(help="more artifacts to compare side by side (repeat the option)"),
    ] = None,
    protocol: Annotated[str, typer.Option("--protocol", "-p")] = "loo",
    k: Annotated[int, typer.Option(help="list length of the per-stage metrics")] = 10,
    store: Annotated[
        str | None, typer.Option(help="serving store: per-arm CTR/conversion with 95% CIs")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Self-contained HTML report: data, funnel chart, stage metrics, AUC, training curves
    (``--store URL``: the rollout arms' outcomes from the impression log instead)."""
    from funnelrec.report.build import build_report, report_json

    if store is not None:
        from funnelrec.loop.commands import arms_report

        arms_report(store, as_json, console)
        return
    if artifacts is None or data is None or out is None:
        raise typer.BadParameter("--artifacts, --data and --out are required (or --store)")
    if k < 1:
        raise typer.BadParameter(f"--k must be >= 1, got {k}")
    runs = [artifacts, *(compare or [])]
    with progress_console.status(f"loading {data}") as status:
        dataset = _load_data(data)
        result = build_report(
            runs, dataset, out, protocol, k, progress=lambda msg: status.update(msg)
        )
    if as_json:
        print(json.dumps({"out": str(out), **report_json(result)}, indent=2))
        return
    main_run = result.runs[0]
    console.print(report_table(main_run.funnel, f"Funnel ({main_run.name}, {protocol})"))
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {result.wall_s:.1f} s)")


@app.command()
def export(
    store: Annotated[str, typer.Option(help="store URL (sqlite:///..., redis://...)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the Parquet files")],
    as_json: JsonOpt = False,
) -> None:
    """Write the store's events, impressions (with clicks) and request links to Parquet."""
    from funnelrec.loop.data import export_store

    counts = export_store(store, out)
    print(json.dumps(counts) if as_json else f"wrote {counts} to {out}")


@app.command()
def refit(
    store: Annotated[str, typer.Option(help="serving store (decisions and models published)")],
    config: Annotated[Path, typer.Option("--config", "-c", help="candidate funnel config")],
    data: DataSpecs,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for candidates")],
    serving: Annotated[
        Path | None, typer.Option(help="serving artifact (default: the store's published one)")
    ] = None,
    margin: Annotated[float, typer.Option(help="relative tolerance of the holdout check")] = 0.02,
    holdout: Annotated[float, typer.Option(help="share of the latest events held out")] = 0.1,
    k: Annotated[int, typer.Option(min=1, help="recall@k of the holdout check")] = 10,
    final_fit: Annotated[bool, typer.Option(help="refit an accepted model on all data")] = True,
    every: Annotated[str | None, typer.Option(help="repeat every (e.g. 6h); once if unset")] = None,
) -> None:
    """Refit on the latest data; swap the model in only if the holdout check passes."""
    from funnelrec.loop.commands import refit_worker

    refit_worker(store, config, data, out, serving, margin, holdout, k, final_fit, every)


@app.command()
def simulate(
    config: Annotated[Path, typer.Option("--config", "-c", help="simulation settings (.toml)")],
    rounds: Annotated[int, typer.Option(min=1, help="serve -> click -> refit rounds")] = 5,
    out: Annotated[Path, typer.Option("--out", "-o", help="work folder")] = Path("simulation"),
    as_json: JsonOpt = False,
) -> None:
    """Simulated users click through the real HTTP API; report CTR per round per model."""
    from funnelrec.loop.commands import simulate_command

    simulate_command(config, rounds, out, as_json, console)


def main() -> None:
    """Entry point: usage errors are typer's; library errors become one clear line."""
    try:
        app()
    except (FunnelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
