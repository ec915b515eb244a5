"""Synthetic interaction logs written to Parquet shards, for ``benchmarks/scale.py``.

    python benchmarks/scale_data.py --out /tmp/funnelrec-scale --shards 20   # 20M interactions

One catalogue (seed 0) shared by every shard; shard ``s`` holds its own users (ids
``s * 10**7 + local``) drawn and simulated with seed ``1 + s`` — the same generative story as
``funnelrec.data.synthetic.generate``. The first ``n`` shards are the ``n``M-interaction world.
Columns: ``user_id`` (Int64), ``item_id`` (Int64), ``timestamp`` (Float64, seconds), in time
order within a shard (no file is grouped by user).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from funnelrec.data.synthetic import START_TIME
from funnelrec.data.synthetic.behaviour import simulate_clicks
from funnelrec.data.synthetic.world import WorldSpec, make_catalogue, make_population


def write_shards(out: Path, shards: int, per_shard: int, n_items: int, users: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spec = WorldSpec()
    cat = make_catalogue(n_items, spec, np.random.default_rng(0))
    for s in range(shards):
        path = out / f"part-{s:05d}.parquet"
        if path.exists():
            continue
        start = time.perf_counter()
        rng = np.random.default_rng(1 + s)
        pop = make_population(users, per_shard, cat, spec, rng)
        user, item, t = simulate_clicks(cat, pop, spec, rng)
        frame = pl.DataFrame(
            {"user_id": user + s * 10**7, "item_id": item, "timestamp": START_TIME + t}
        ).sort("timestamp", maintain_order=True)
        tmp = path.with_suffix(".tmp")
        frame.write_parquet(tmp, row_group_size=250_000)
        tmp.replace(path)
        seconds = time.perf_counter() - start
        print(f"{path.name}: {frame.height} rows in {seconds:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/funnelrec-scale"))
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--per-shard", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users-per-shard", type=int, default=20_000)
    args = parser.parse_args()
    write_shards(args.out, args.shards, args.per_shard, args.items, args.users_per_shard)


if __name__ == "__main__":
    main()
