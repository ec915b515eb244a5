"""``serve --refit-every 6h``: every interval, run ``funnelrec refit`` (funnelrec/loop/refit.py)
as a low-priority child process on this server's store; an accepted model is published in
the store and this process (and every other one on the store) hot-swaps it (serve/sync.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from funnelrec.serve.state import ServeState

log = logging.getLogger(__name__)


def refit_command(state: ServeState) -> list[str]:
    """The ``funnelrec refit`` command line of one round."""
    s = state.settings
    served = state.current
    config = s.refit_config or (served.artifacts / "config.yaml")
    out = s.refit_out or (served.artifacts.resolve().parent / "refits")
    cmd = [sys.executable, "-m", "funnelrec", "refit", "--store", s.store, "--config", str(config)]
    for spec in s.refit_data or [s.store]:
        cmd += ["--data", spec]
    cmd += ["--serving", str(served.artifacts), "--out", str(out), "--margin", str(s.refit_margin)]
    return cmd


async def run_schedule(state: ServeState) -> None:
    """Refit rounds forever, ``refit_every_s`` apart (one at a time)."""
    while True:
        await asyncio.sleep(state.settings.refit_every_s)
        cmd = refit_command(state)
        proc = await asyncio.create_subprocess_exec(
            *cmd, preexec_fn=lambda: os.nice(10), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            log.warning("refit round failed (exit %s)", proc.returncode)
            continue
        log.info("refit: %s", out.decode(errors="replace").strip()[-500:])
        await state.sync.check()  # adopt a published model now (also without fleet sync)
