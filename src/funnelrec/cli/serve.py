"""``serve``: a saved funnel over HTTP (one process or several uvicorn workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from funnelrec.cli.common import ThreadsOpt, app


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
    balance: Annotated[
        str | None,
        typer.Option(help="--workers: round_robin (connections dealt in turn) | kernel"),
    ] = None,
) -> None:
    """Serve a saved funnel over HTTP (settings also from FUNNELREC_* env vars)."""
    import uvicorn

    from funnelrec.loop.refit import parse_duration
    from funnelrec.serve import create_app, load_settings

    flags: dict[str, Any] = dict(artifacts=artifacts, store=store, host=host, port=port)
    flags.update(candidate=candidate, share=share, interleave=interleave, threads=threads)
    flags["balance"] = balance
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
    """``workers`` server processes, each building the app from the environment (flags and
    the settings file passed through ``FUNNELREC_*``), behind ``serve.balancer``."""
    import os

    import uvicorn

    from funnelrec.serve import balancer, load_settings
    from funnelrec.serve.settings import ENV_PREFIX, server_threads

    if settings_file is not None:
        os.environ[f"{ENV_PREFIX}SETTINGS_FILE"] = str(settings_file.resolve())
    for key, value in flags.items():
        if value is not None:
            os.environ[f"{ENV_PREFIX}{key.upper()}"] = str(value)
    settings = load_settings()
    if settings.threads is None:  # the cores split among the workers (less each one's event loop)
        os.environ[f"{ENV_PREFIX}THREADS"] = str(server_threads(settings, workers))
    if settings.balance == "round_robin" and balancer.supported():  # dealt in turn
        balancer.serve_balanced(settings.host, settings.port, workers, settings.log_level)
        return
    uvicorn.run(  # --balance kernel, or no socket passing (Windows): a shared listening socket
        "funnelrec.serve.workers:app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )
