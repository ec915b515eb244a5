"""Command line: ``funnelrec demo | fit | evaluate | recommend | serve | report | profile |
init | tune | export | refit | simulate``.

Thin typer commands over the library. Errors print one clear line and exit non-zero;
``--json`` prints machine-readable output.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from funnelrec.config import load_config
from funnelrec.data.splits import split as split_dataset
from funnelrec.errors import ConfigError, DataError, DataWarning, FunnelError
from funnelrec.eval.funnel import FunnelReport, evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.threads import apply_threads

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
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", min=1, help="threads for torch, BLAS and Faiss (env FUNNELREC_THREADS)"
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="no progress output (for scripts); results only")
]


def _load_data(spec: str) -> Any:
    from funnelrec.data.loaders import load_dataset

    return load_dataset(spec)


def demo_config_path() -> Path:
    from funnelrec.demo import demo_config_path as path

    return path()


def _progress(message: str, quiet: bool) -> Any:
    """A spinner on stderr (never mixed with stdout), or nothing with ``--quiet`` (which
    also silences the training loop's progress bars through ``FUNNELREC_QUIET``)."""
    if quiet:
        os.environ["FUNNELREC_QUIET"] = "1"
        return nullcontext()
    return progress_console.status(message)


def refuse_overwrite(out: Path, force: bool) -> None:
    """``fit --out`` never replaces an existing artifact (or any non-empty path) silently."""
    if force or not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    what = "a funnel artifact" if (out / "meta.json").is_file() else "not empty"
    raise FunnelError(f"--out {out} exists ({what}); pass --force to replace it")


def _updater(status: Any) -> Any:
    """``progress(msg)`` callback for a ``_progress`` context (no-op when quiet)."""
    return (lambda msg: status.update(msg)) if status is not None else (lambda _msg: None)


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
        "segments": {name: vars(seg) for name, seg in report.segments.items()},
    }


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="synthetic users")] = 2000,
    interactions: Annotated[int, typer.Option(help="synthetic interactions")] = 100_000,
    config: Annotated[Path | None, typer.Option(help="funnel config (default: built-in)")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Synthetic world → fit the funnel → stage-by-stage evaluation → one traced slate."""
    from funnelrec.demo import NEXT_STEPS, demo_json, headline, run_demo

    with _progress("starting", quiet) as status:
        result = run_demo(users, interactions, config, progress=_updater(status))
    if as_json:
        print(json.dumps(demo_json(result, _report_json(result.report)), indent=2))
        return
    ds, report = result.dataset, result.report
    console.print(
        f"[bold]{ds.name}[/]: {ds.n_users} users, {ds.n_items} items, "
        f"{len(ds)} interactions; protocol loo"
    )
    console.print(
        report_table(report, f"Funnel evaluation ({report.n_users} users, {report.wall_s:.2f} s)")
    )
    console.print(f"Final slate: {headline(report.metrics)}\n")
    console.print(result.trace.view(0, user=result.user_id))
    console.print("\n[bold]Next[/]")
    for what, command in NEXT_STEPS:
        console.print(f"  [dim]{what:<8}[/]{command}", soft_wrap=True, highlight=False)


@app.command()
def fit(
    config: Annotated[Path, typer.Option("--config", "-c", help="funnel config (.toml/.yaml)")],
    data: DataSpecs,
    out: Annotated[Path, typer.Option("--out", "-o", help="artifact directory")],
    as_json: JsonOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="replace an existing artifact at --out")
    ] = False,
    quiet: QuietOpt = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="under torchrun: DDP training (batch_size per process), rank 0 saves",
        ),
    ] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Fit a funnel on a dataset and save the artifact directory (with its training log).

    Distributed: ``torchrun --nproc_per_node=N -m funnelrec fit --distributed ...``.
    """
    import time

    from funnelrec.train import distributed as dist
    from funnelrec.train.loop import record_runs

    funnel = Funnel(load_config(config))
    apply_threads(threads, funnel.config.threads)
    refuse_overwrite(out, force)
    if distributed:
        dist.init()
    show = dist.is_main() and not quiet  # only rank 0 shows progress and writes the artifact
    try:
        from funnelrec.loop.data import load_specs

        with _progress(f"loading {data}", not show):
            dataset = load_specs(data)
        if len(dataset) == 0:
            where = ", ".join(map(str, data)) if isinstance(data, list) else data
            raise DataError(f"{where}: no interactions (empty file?): nothing to fit")
        start = time.perf_counter()
        with _progress(f"fitting on {dataset.name}", not show), record_runs() as runs:
            funnel.fit(dataset)
        fit_s = time.perf_counter() - start
        if not dist.is_main():
            return
        log = [{"model": r.model, "epochs": [vars(e) for e in r.result.history]} for r in runs]
        funnel.save(out, extra={"training_log.json": log})
        if as_json:
            print(json.dumps({"artifacts": str(out), "dataset": dataset.name, "fit_s": fit_s}))
            return
        console.print(f"saved funnel to {out} (fit {fit_s:.1f} s)")
    finally:
        dist.shutdown()


@app.command()
def evaluate(
    data: DataOpt,
    artifacts: Annotated[
        Path | None, typer.Option("--artifacts", "-a", help="a fitted funnel (its config)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="a funnel config (instead of -a)")
    ] = None,
    protocol: Annotated[str, typer.Option("--protocol", "-p")] = "loo",
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fit a config (``--config``, or the config of ``--artifacts``) on the protocol's train
    part and evaluate every stage on its test part, in one go."""
    if (artifacts is None) == (config is None):
        raise typer.BadParameter("give exactly one of --config or --artifacts")
    funnel_config = load_config(config) if config else Funnel.load(artifacts or Path()).config
    apply_threads(threads, funnel_config.threads)
    with _progress(f"loading {data}", quiet):
        parts = split_dataset(_load_data(data), protocol)
    with _progress("fitting on the train part", quiet):
        funnel = Funnel(funnel_config).fit(parts.train, valid=parts.valid)
    with _progress("evaluating every stage", quiet):
        report = evaluate_funnel(funnel, parts)
    if as_json:
        print(json.dumps(_report_json(report), indent=2))
        return
    console.print(report_table(report, f"Funnel evaluation, {protocol} ({report.n_users} users)"))
    console.print(metrics_table(report.metrics, "Final slate"))
    if len(report.segments) > 1:  # warm and cold users apart
        for name, seg in report.segments.items():
            console.print(metrics_table(seg.metrics, f"Final slate, {name} ({seg.n_users} users)"))


@app.command()
def profile(data: DataOpt, as_json: JsonOpt = False) -> None:
    """What the data supports: timestamps, feedback, item attributes, repeats, sizes, skew."""
    from funnelrec.profile import profile as profile_data
    from funnelrec.profile import rows

    with progress_console.status(f"loading {data}"):
        result = profile_data(_load_data(data))
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"Data profile: {result.name}")
    table.add_column("what")
    table.add_column("value")
    for what, value in rows(result):
        table.add_row(what, value)
    console.print(table)


@app.command()
def init(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="config file to write (.toml)")],
    quick: Annotated[bool, typer.Option(help="one epoch per learned stage (smoke runs)")] = False,
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented config that uses only what the data supports, sized to it."""
    from funnelrec.init_config import write_config

    with progress_console.status(f"loading {data}"):
        dataset = _load_data(data)
    write_config(dataset, out, effort="quick" if quick else "default", force=force)
    console.print(f"wrote {out}")


@app.command()
def tune(
    config: Annotated[Path, typer.Option("--config", "-c", help="starting config")],
    data: DataOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="tuned config")] = None,
    trials: Annotated[int, typer.Option(min=1, help="most trials")] = 30,
    budget: Annotated[str, typer.Option(help="wall-clock budget: 30m, 1h, 600s")] = "30m",
    protocol: Annotated[str, typer.Option("--protocol", "-p")] = "loo",
    valid_users: Annotated[int, typer.Option(min=1, help="validation users scored")] = 3000,
    as_json: JsonOpt = False,
) -> None:
    """Optuna search on the validation part only; writes the tuned config, its search
    history (JSON) and a plot of it beside the config."""
    from funnelrec.io import read_mapping_file
    from funnelrec.tune import parse_budget, write_outputs
    from funnelrec.tune import tune as run_tune

    raw = read_mapping_file(config, "config")
    seconds = parse_budget(budget)
    target = out or config.with_name(config.stem + ".tuned.toml")
    with progress_console.status(f"loading {data}") as status:
        dataset = _load_data(data)
        result = run_tune(
            raw, dataset, protocol=protocol, trials=trials, budget_s=seconds,
            valid_users=valid_users, progress=status.update,
        )  # fmt: skip
    paths = write_outputs(result, target, dataset.name)
    summary = {
        "valid_ndcg@10": result.best_value,
        "init_valid_ndcg@10": result.init_value,
        "trials": result.n_trials,
        "wall_s": round(result.wall_s, 1),
        **{k: str(v) for k, v in paths.items()},
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    valid = {"tuned": result.best_value, "starting config": result.init_value}
    console.print(metrics_table(valid, "Validation NDCG@10"))
    console.print(f"{result.n_trials} trials in {result.wall_s:.0f} s; wrote {paths['config']}")


@app.command()
def recommend(
    artifacts: Annotated[Path, typer.Option("--artifacts", "-a")],
    user: Annotated[list[str], typer.Option("--user", "-u", help="external user id (repeatable)")],
    k: Annotated[int | None, typer.Option(help="slate size")] = None,
    explain: Annotated[
        bool, typer.Option(help="show the funnel trace: slate and per-stage tables")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recommend for users of a saved funnel (unknown users get cold-start results)."""
    funnel = Funnel.load(artifacts)
    trace = funnel.run(funnel.query_for(list(user), k))  # k < 1: ConfigError
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
    for row, entry in enumerate(out):
        if explain:
            console.print(trace.view(row, user=str(entry["user"])))
        else:
            console.print(f"[bold]{entry['user']}[/]: {entry['items']}")


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
    threads: ThreadsOpt = None,
) -> None:
    """Serve a saved funnel over HTTP (settings also from FUNNELREC_* env vars)."""
    import uvicorn

    from funnelrec.loop.refit import parse_duration

    if threads is not None:  # else the artifact's config (or the env) decides, at load
        apply_threads(threads)

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
    quiet: QuietOpt = False,
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
        raise ConfigError(f"k must be >= 1, got {k}")  # one line, as everywhere
    runs = [artifacts, *(compare or [])]
    with _progress(f"loading {data}", quiet) as status:
        dataset = _load_data(data)
        result = build_report(runs, dataset, out, protocol, k, progress=_updater(status))
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


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Data warnings as one ``warning: ...`` line; others as Python prints them."""
    if issubclass(category, DataWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, *args, **kwargs)


_python_showwarning = warnings.showwarning


def main() -> None:
    """Entry point: usage errors are typer's; library errors become one clear line."""
    warnings.showwarning = _show_warning
    try:
        app()
    except (FunnelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
