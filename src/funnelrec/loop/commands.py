"""Logic of the loop's CLI commands (``refit``, ``report --store``, ``simulate``); ``cli/loop.py``
keeps thin typer functions over these."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from funnelrec.errors import ConfigError, FunnelError
from funnelrec.loop.data import open_spec
from funnelrec.loop.refit import RefitPlan, parse_duration, record_failure, refit_once
from funnelrec.serve.rollout import outcomes_of


def arms_report(store_url: str, as_json: bool, console: Console) -> None:
    """Per-arm CTR and conversion with Wilson 95% intervals, and interleaving wins."""
    store = open_spec(store_url)
    try:
        outcomes = outcomes_of(store.impressions(), store.feedback())
    finally:
        store.close()
    rows = [
        {"arm": arm, **dataclasses.asdict(c), "ctr": list(ctr), "conversion": list(conv)}
        for arm, c, ctr, conv in outcomes.table()
    ]
    if as_json:
        print(json.dumps({"arms": rows, "interleave_wins": outcomes.wins()}, indent=2))
        return
    table = Table(title=f"Rollout arms ({store_url})")
    for col in ("arm", "requests", "impressions", "clicks", "CTR [95% CI]", "conversion [95% CI]"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for r in rows:
        ctr, conv = r["ctr"], r["conversion"]
        table.add_row(
            r["arm"], str(r["requests"]), str(r["impressions"]), str(r["clicks"]),
            f"{ctr[0]:.4f} [{ctr[1]:.4f}, {ctr[2]:.4f}]",
            f"{conv[0]:.4f} [{conv[1]:.4f}, {conv[2]:.4f}]",
        )  # fmt: skip
    console.print(table)
    wins = outcomes.wins()
    if sum(wins.values()):
        console.print(f"interleaving wins: {wins}")


def refit_worker(
    store: str,
    config: Path,
    data: list[str],
    out: Path,
    serving: Path | None,
    margin: float,
    holdout: float,
    k: int,
    final_fit: bool,
    every: str | None,
) -> None:
    """One refit round, or one every ``every`` (a failed round is counted and retried)."""
    interval = parse_duration(every) if every else None
    while True:
        plan = RefitPlan(
            config=config,
            data=tuple(data),
            serving=serving or _published_serving(store),
            out=out,
            store=store,
            holdout_share=holdout,
            margin=margin,
            k=k,
            final_fit=final_fit,
        )
        try:
            decision = refit_once(plan)
            print(json.dumps(dataclasses.asdict(decision)))
        except FunnelError as exc:
            record_failure(store, str(exc))
            if interval is None:
                raise
            print(f"refit failed: {exc}")
        if interval is None:
            return
        time.sleep(interval)


def _published_serving(store_url: str) -> Path:
    store = open_spec(store_url)
    try:
        _, value = store.published("artifacts")
    finally:
        store.close()
    if not value:
        raise ConfigError(f"{store_url}: no published serving artifact; pass --serving DIR")
    return Path(value)


def simulate_command(config: Path, rounds: int, out: Path, as_json: bool, console: Console) -> None:
    from funnelrec.loop.simulate import load_sim_config, simulate

    cfg = load_sim_config(config)
    runs = simulate(cfg, rounds, out, progress=lambda m: console.print(m, style="dim"))
    if as_json:
        print(json.dumps({r.name: r.metrics() for r in runs}, indent=2))
        return
    table = Table(title=f"Simulated CTR per round ({rounds} rounds)")
    table.add_column("model")
    for r in range(rounds):
        table.add_column(f"r{r + 1}", justify="right")
    for run in runs:
        table.add_row(run.name, *(f"{c:.4f}" for c in run.ctr))
    console.print(table)
