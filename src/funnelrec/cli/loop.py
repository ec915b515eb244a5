"""The feedback loop's commands: ``export``, ``refit``, ``simulate``.

Their logic lives in ``funnelrec/loop/commands.py``; these are the thin typer functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from funnelrec.cli.common import DataSpecs, JsonOpt, app, console


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
