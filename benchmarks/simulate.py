"""Closed-loop simulation: the synthetic world clicks on what the server shows, and the loop
refits (protocol ``simulate``; see src/funnelrec/loop/simulate.py).

    python benchmarks/simulate.py --config configs/simulate.toml --rounds 5

Rows (``stage: "serve"``): one per model of the config (``popular``, ``strategy-static``,
``loop``) with ``ctr_r1`` ... ``ctr_rN``, ``ctr_final`` (last round), ``ctr_pos1`` ...
``ctr_posK`` (CTR per slate position over all rounds: the position bias the world applies)
and ``refits_accepted``. ``internal_valid`` of the loop row: its refit decisions (holdout
recall@k of candidate vs serving model on events newer than the serving model's data; the
rule: accept iff candidate >= serving x (1 - margin)). No test data: the figure of merit is
the simulated CTR itself, which no choice was tuned on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, row, write_rows

from funnelrec.loop.simulate import load_sim_config, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "simulate.toml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    cfg = load_sim_config(args.config)
    work = args.work or Path(tempfile.mkdtemp(prefix="funnelrec-sim-"))
    start = time.perf_counter()
    runs = simulate(
        cfg, args.rounds, work, progress=lambda m: print(m, file=sys.stderr, flush=True)
    )
    dataset = f"synthetic-{cfg.n_interactions // 1000}k"
    rows = []
    for run in runs:
        extra = {}
        if run.decisions:
            extra["internal_valid"] = [
                {
                    k: d[k]
                    for k in ("accepted", "serving_recall", "candidate_recall", "holdout_users")
                }
                for d in run.decisions
            ]
            extra["rule"] = (
                f"refit accepted iff holdout recall@{cfg.k} >= serving x (1 - {cfg.margin})"
            )
        rows.append(
            row(dataset, "simulate", run.name, "serve", run.metrics(), run.wall_s, run.cpu_s,
                **extra)
        )  # fmt: skip
    path = write_rows("simulate", rows)
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
