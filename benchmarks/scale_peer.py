"""The peer task of ``scale.py``: the strategy funnel plus one learned channel against implicit
ALS on the same synthetic log (the first ``n`` shards of ``scale_data.py``), in memory.

    python benchmarks/scale.py --tasks peer-als,funnel-als --sizes 20 --threads 2

* ``peer-implicit-als``: ``implicit``'s ``AlternatingLeastSquares`` (64 factors, 15 sweeps,
  conjugate gradient, binary confidence: the settings of the funnel's ``als`` channel) fitted on
  the user × item matrix; the wall time counts building the id maps and the CSR matrix.
* ``funnel-als``: ``Funnel(configs/scale-20m.toml).fit`` (item-CF, ALS, popular, fresh; seen
  filter); the wall time counts ``Dataset.from_frame`` and the funnel's fit.

Both start from the same Parquet frame read before the clock starts; each runs in its own
process, so ``peak_mb`` is that side's alone. ``time_vs_peer`` (added by ``scale.py`` when both
ran at one size) = funnel wall / peer wall; the target is ≤ 3 with ``peak_mb`` ≤ 4000.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from harness import cpu_seconds, peak_mb, row
from threadpoolctl import threadpool_limits

from funnelrec.config import load_config
from funnelrec.data.dataset import Dataset
from funnelrec.pipeline import Funnel

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "scale-20m.toml"


def read_log(args: argparse.Namespace, size: int) -> pl.DataFrame:
    """The first ``size`` shards as one frame (user_id, item_id, timestamp)."""
    files = sorted(Path(args.data).glob("part-*.parquet"))[:size]
    if len(files) < size:
        sys.exit(f"{args.data} holds {len(files)} shards; {size} needed (run scale_data.py)")
    return pl.read_parquet(files)


def run_peer_als(args: argparse.Namespace, size: int, _spill: Path) -> dict[str, Any]:
    from implicit.cpu.als import AlternatingLeastSquares  # benchmark-only peer (bench)

    frame = read_log(args, size)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    users, user_idx = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    items, item_idx = np.unique(frame["item_id"].to_numpy(), return_inverse=True)
    n_events = frame.height
    del frame  # both sides drop the frame once they hold their own copy of the log
    matrix = sp.csr_matrix(
        (np.ones(len(user_idx), np.float32), (user_idx, item_idx)), (len(users), len(items))
    )
    del user_idx, item_idx
    matrix.data[:] = 1.0  # binary confidence, as the funnel's als channel
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=64, regularization=0.01, alpha=1.0, iterations=15, use_cg=True,
            calculate_training_loss=False, num_threads=args.threads, random_state=0,
        )  # fmt: skip
        model.cg_steps = 3
        model.fit(matrix, show_progress=False)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    metrics = {"events": n_events, "users": len(users), "n_items": len(items),
               "events_per_s": n_events / wall, "bound_mb": args.bound_mb,
               "ok": float(peak_mb() < args.bound_mb)}  # fmt: skip
    return row(f"synthetic-{size}m", "stream", "peer-implicit-als", "recall", metrics, wall, cpu)


def run_funnel_als(args: argparse.Namespace, size: int, _spill: Path) -> dict[str, Any]:
    frame = read_log(args, size)
    config = load_config(CONFIG).model_copy(update={"threads": args.threads})
    start, cpu0 = time.perf_counter(), cpu_seconds()
    data = Dataset.from_frame(frame, name=f"synthetic-{size}m")
    n_events = frame.height
    del frame  # both sides drop the frame once they hold their own copy of the log
    load_s = time.perf_counter() - start
    Funnel(config).fit(data)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    metrics = {"events": n_events, "users": data.n_users, "n_items": data.n_items,
               "events_per_s": n_events / wall, "load_s": load_s,
               "bound_mb": args.bound_mb, "ok": float(peak_mb() < args.bound_mb)}  # fmt: skip
    return row(f"synthetic-{size}m", "stream", "funnel-als", "recall", metrics, wall, cpu)


def add_peer_ratio(rows: list[dict[str, Any]]) -> None:
    """``time_vs_peer`` on each ``funnel-als`` row with a ``peer-implicit-als`` row of its size."""
    peers = {r["dataset"]: r["wall_s"] for r in rows if r["model"] == "peer-implicit-als"}
    for r in rows:
        if r["model"] == "funnel-als" and r["dataset"] in peers:
            r["metrics"]["time_vs_peer"] = round(r["wall_s"] / peers[r["dataset"]], 4)
