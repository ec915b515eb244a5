"""Shared pieces of the CLI: the typer ``app``, consoles, option types and output helpers."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from funnelrec.errors import FunnelError
from funnelrec.eval.funnel import FunnelReport

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


def load_data(spec: str) -> Any:
    from funnelrec.data.loaders import load_dataset

    return load_dataset(spec)


def progress(message: str, quiet: bool) -> Any:
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


def updater(status: Any) -> Any:
    """``progress(msg)`` callback for a ``progress`` context (no-op when quiet)."""
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


def report_json(report: FunnelReport) -> dict[str, Any]:
    return {
        "stages": [vars(r) for r in report.stages],
        "metrics": report.metrics,
        "n_users": report.n_users,
        "wall_s": report.wall_s,
        "cold_metrics": report.cold_metrics,
        "n_cold_users": report.n_cold_users,
        "segments": {name: vars(seg) for name, seg in report.segments.items()},
    }
