"""Core commands: ``demo``, ``fit``, ``evaluate``, ``recommend``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from funnelrec.cli.common import (
    DataOpt,
    DataSpecs,
    JsonOpt,
    QuietOpt,
    ThreadsOpt,
    app,
    console,
    load_data,
    metrics_table,
    progress,
    refuse_overwrite,
    report_json,
    report_table,
    updater,
)
from funnelrec.config import load_config
from funnelrec.data.splits import split as split_dataset
from funnelrec.errors import DataError
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel
from funnelrec.threads import apply_threads


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

    with progress("starting", quiet) as status:
        result = run_demo(users, interactions, config, progress=updater(status))
    if as_json:
        print(json.dumps(demo_json(result, report_json(result.report)), indent=2))
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

        with progress(f"loading {data}", not show):
            dataset = load_specs(data)
        if len(dataset) == 0:
            where = ", ".join(map(str, data)) if isinstance(data, list) else data
            raise DataError(f"{where}: no interactions (empty file?): nothing to fit")
        start = time.perf_counter()
        with progress(f"fitting on {dataset.name}", not show), record_runs() as runs:
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
    with progress(f"loading {data}", quiet):
        parts = split_dataset(load_data(data), protocol)
    with progress("fitting on the train part", quiet):
        funnel = Funnel(funnel_config).fit(parts.train, valid=parts.valid)
    with progress("evaluating every stage", quiet):
        report = evaluate_funnel(funnel, parts)
    if as_json:
        print(json.dumps(report_json(report), indent=2))
        return
    console.print(report_table(report, f"Funnel evaluation, {protocol} ({report.n_users} users)"))
    console.print(metrics_table(report.metrics, "Final slate"))
    if len(report.segments) > 1:  # warm and cold users apart
        for name, seg in report.segments.items():
            console.print(metrics_table(seg.metrics, f"Final slate, {name} ({seg.n_users} users)"))


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
