"""Commands that fit the funnel to new data: ``profile``, ``init``, ``tune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from funnelrec.cli.common import (
    DataOpt,
    JsonOpt,
    app,
    console,
    load_data,
    metrics_table,
    progress_console,
)


@app.command()
def profile(data: DataOpt, as_json: JsonOpt = False) -> None:
    """What the data supports: timestamps, feedback, item attributes, repeats, sizes, skew."""
    from funnelrec.profile import profile as profile_data
    from funnelrec.profile import rows

    with progress_console.status(f"loading {data}"):
        result = profile_data(load_data(data))
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
        dataset = load_data(data)
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
        dataset = load_data(data)
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
