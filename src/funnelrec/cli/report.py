"""``report``: the self-contained HTML report (or the rollout arms' outcomes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from funnelrec.cli.common import (
    JsonOpt,
    QuietOpt,
    app,
    console,
    load_data,
    progress,
    report_table,
    updater,
)
from funnelrec.errors import ConfigError


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
    tuning: Annotated[
        list[Path] | None,
        typer.Option(help="a `funnelrec tune` history (<stem>.history.json) to show (repeat)"),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="serving store: per-arm CTR/conversion with 95% CIs")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Self-contained HTML report: data, funnel chart, stage metrics, AUC, training curves,
    tuning histories (``--tuning``) (``--store URL``: the rollout arms' outcomes from the
    impression log instead)."""
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
    with progress(f"loading {data}", quiet) as status:
        dataset = load_data(data)
        result = build_report(
            runs, dataset, out, protocol, k, progress=updater(status), tuning=tuning or ()
        )
    if as_json:
        print(json.dumps({"out": str(out), **report_json(result)}, indent=2))
        return
    main_run = result.runs[0]
    console.print(report_table(main_run.funnel, f"Funnel ({main_run.name}, {protocol})"))
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {result.wall_s:.1f} s)")
