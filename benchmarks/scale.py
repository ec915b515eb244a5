"""Scale: item-CF and one two-tower training epoch streamed from Parquet, 1M / 5M / 20M events.

    python benchmarks/scale_data.py --out /tmp/funnelrec-scale --shards 20   # once, ~6 min
    nice python benchmarks/scale.py --data /tmp/funnelrec-scale --sizes 1,5,20

Each (task, size) runs in a fresh process, so ``peak_mb`` (VmHWM) is that run's alone. The
log of ``n``M events is the first ``n`` shards (``scale_data.py``: one 200k-item catalogue,
20k users and 1M events per shard, files in time order, not grouped by user). Protocol
``stream``: no evaluation, cost only.

The log is first spilled into one Parquet file per user chunk (``ParquetInteractions.spill``:
one pass, included in the wall time, ``spill_s``), so later passes read one chunk each.

* ``itemcf-stream``: ``ItemCFRecall.fit_stream`` (``chunk_rows`` events per user chunk; pair
  sums spilled per source-item block sized so one block holds at most ``max_pairs`` raw pairs:
  50M by default, 1 block at 1M events, 2 at 5M, 8 at 20M), sequential window only
  (``global_weight = 0``: the global all-pairs part costs the sum of squared history lengths,
  3·10^8 ordered pairs per 1M events here, vs 2·10^7 for the window); ``nnz`` = entries of
  the pruned graph (≤ n_items × 100).
* ``two_tower-stream-epoch``: one epoch of a history-only two-tower (dim 32, last 20 items,
  in-batch sampled softmax with log-Q, batch 4096, Adam) through ``train.loop.fit`` on
  ``StreamingPairBatches`` (one user chunk in memory at a time).

  ``--epoch-fast``: sparse gradients, the first ``--in-batch`` positives plus ``--n-extra``
  sampled negatives as every row's negatives (model ``two_tower-stream-epoch-sparse-shared``;
  ``--epoch-dim 64`` for the issue's dim). ``--epoch-precision bfloat16``: also the
  softmax's products on bfloat16 inputs (the channels' ``precision``; name ends ``-bf16``).
* ``peer-als``, ``funnel-als``: see ``scale_peer.py`` (in memory; implicit ALS vs the strategy
  funnel plus ALS on the same log).

``--epoch-batches B`` stops the epoch after ``B`` batches (``epoch_share`` < 1): the epoch's
wall time is then projected as ``setup_s`` (spill, id map, counts) + training time /
``epoch_share`` (``epoch_s_projected``); peak memory is measured, and it does not
depend on how many chunks were visited (one chunk is held at a time).

``bound_mb`` is the configured memory bound the run is checked against (``ok`` = 1 when
``peak_mb`` stays below it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness import cpu_seconds, peak_mb, row, write_rows
from scale_peer import add_peer_ratio, run_funnel_als, run_peer_als
from scale_speed import add_arguments, run_eval, run_itemcf_memory, run_train

from funnelrec.data.streaming import ParquetInteractions, item_counts
from funnelrec.models.towers import TowerSizes, TwoTower
from funnelrec.recall.itemcf import ItemCFRecall
from funnelrec.threads import apply_threads
from funnelrec.train.loop import fit
from funnelrec.train.losses import PRECISIONS, RetrievalLoss
from funnelrec.train.negatives import NegativeSampler
from funnelrec.train.stream import StreamingPairBatches


def source(args: argparse.Namespace, size: int, spill: Path) -> ParquetInteractions:
    """The first ``size`` shards, spilled into user chunks under ``spill`` (one pass)."""
    files = sorted(Path(args.data).glob("part-*.parquet"))[:size]
    if len(files) < size:
        sys.exit(f"{args.data} holds {len(files)} shards; {size} needed (run scale_data.py)")
    return ParquetInteractions(files, chunk_rows=args.chunk_rows).spill(spill)


def run_itemcf(args: argparse.Namespace, size: int, spill: Path) -> dict[str, Any]:
    start, cpu0 = time.perf_counter(), cpu_seconds()
    src = source(args, size, spill)
    spill_s = time.perf_counter() - start
    ids = src.item_ids()
    model = ItemCFRecall(global_weight=0.0)
    model.fit_stream(src, ids, args.item_blocks, max_pairs=args.max_pairs)
    wall = time.perf_counter() - start
    n = src.n_rows()
    metrics = {
        "events": n, "events_per_s": n / wall, "nnz": model.similarity_.nnz, "spill_s": spill_s,
        "n_chunks": src.n_chunks, "chunk_rows": args.chunk_rows, "bound_mb": args.bound_mb,
        "ok": float(peak_mb() < args.bound_mb),
    }  # fmt: skip
    cpu_s = cpu_seconds() - cpu0
    metrics["events_per_cpu_s"] = n / cpu_s
    return row(f"synthetic-{size}m", "stream", "itemcf-stream", "recall", metrics, wall, cpu_s)


def run_epoch(args: argparse.Namespace, size: int, spill: Path) -> dict[str, Any]:
    start, cpu0 = time.perf_counter(), cpu_seconds()
    src = source(args, size, spill)
    ids = src.item_ids()
    pop = item_counts(src, ids)
    model = TwoTower(TowerSizes(n_users=0, n_items=len(ids)), args.epoch_dim, use_user_id=False)
    fast = args.epoch_fast  # sparse gradients + shared negatives (the train task's fast path)
    extra = NegativeSampler(len(ids), None, pop, 0.0) if fast else None
    prob = torch.as_tensor(pop / pop.sum()).float()
    loss = RetrievalLoss(
        "softmax", temperature=0.1, batch_prob=prob,
        extra_prob=torch.as_tensor(extra.prob).float() if extra else None,
        in_batch=args.in_batch if fast else None, precision=args.epoch_precision,
    )  # fmt: skip
    stream = StreamingPairBatches(
        src, ids, args.batch_size, max_history=20, extra_sampler=extra,
        n_extra=args.n_extra if fast else 0,
    )  # fmt: skip
    cap = args.epoch_batches

    def batches(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        return itertools.islice(stream(epoch, rng), cap)  # cap: a measured share of the epoch

    setup = time.perf_counter() - start  # spill, item ids, item counts
    result = fit(model, batches, loss, epochs=1, lr=0.005, num_threads=args.threads, sparse=fast)
    wall = time.perf_counter() - start
    train = wall - setup
    n = src.n_rows()
    done = n if cap is None else min(n, cap * args.batch_size)
    metrics = {
        "events": n, "pairs_per_s": done / train, "loss": result.history[0].loss,
        "epoch_share": done / n, "setup_s": setup, "epoch_s_projected": setup + train * n / done,
        "n_chunks": src.n_chunks, "chunk_rows": args.chunk_rows, "bound_mb": args.bound_mb,
        "ok": float(peak_mb() < args.bound_mb), "dim": args.epoch_dim,
        **({"in_batch": args.in_batch, "n_extra": args.n_extra} if fast else {}),
    }  # fmt: skip
    cpu_s = cpu_seconds() - cpu0
    name = "two_tower-stream-epoch" + ("-sparse-shared" if fast else "")
    name += "-bf16" if args.epoch_precision == "bfloat16" else ""
    return row(
        f"synthetic-{size}m", "stream", name, "recall", metrics, wall, cpu_s,
        precision=args.epoch_precision,
    )  # fmt: skip


TASKS = {"itemcf": run_itemcf, "epoch": run_epoch, "peer-als": run_peer_als,
         "funnel-als": run_funnel_als}  # fmt: skip
# in-memory synthetic data; sizes: --eval-users (eval), else --items
IN_MEMORY = {"train": run_train, "eval": run_eval, "itemcf-memory": run_itemcf_memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/tmp/funnelrec-scale")
    parser.add_argument("--sizes", default="1,5,20", help="millions of events (shards)")
    parser.add_argument(
        "--tasks",
        default="itemcf,epoch",
        help="itemcf,epoch,train,eval,itemcf-memory,peer-als,funnel-als",
    )
    parser.add_argument("--chunk-rows", type=int, default=2_000_000)
    parser.add_argument("--item-blocks", type=int, default=None, help="default: from max-pairs")
    parser.add_argument("--max-pairs", type=int, default=50_000_000)
    parser.add_argument("--spill-dir", default="/tmp")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch, BLAS and Faiss in every task (default: FUNNELREC_THREADS, "
        "else every CPU)",
    )
    parser.add_argument(
        "--epoch-batches", type=int, default=None, help="stop the epoch after this many batches"
    )
    parser.add_argument("--bound-mb", type=float, default=4000.0)
    parser.add_argument("--epoch-dim", type=int, default=32, help="epoch: two-tower dim")
    parser.add_argument(
        "--epoch-fast",
        action="store_true",
        help="epoch: sparse gradients, --in-batch shared and --n-extra sampled negatives",
    )
    parser.add_argument(
        "--epoch-precision",
        choices=PRECISIONS,
        default="float32",
        help="epoch: input dtype of the softmax's products",
    )
    parser.add_argument("--one", nargs=2, metavar=("TASK", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    add_arguments(parser)
    args = parser.parse_args()
    # one setting for every task and child process (exported; the rows' ``threads`` reads it)
    args.threads = apply_threads(args.threads)
    if args.one:
        task, size = args.one
        if task in IN_MEMORY:
            for r in IN_MEMORY[task](args, int(size)):
                print("ROW " + json.dumps(r), flush=True)
            return
        with tempfile.TemporaryDirectory(dir=args.spill_dir) as spill:
            print("ROW " + json.dumps(TASKS[task](args, int(size), Path(spill))), flush=True)
        return
    rows = []
    for task in args.tasks.split(","):
        sizes = {"eval": args.eval_users}.get(task, args.items if task in IN_MEMORY else args.sizes)
        for size in (int(s) for s in sizes.split(",")):
            cmd = [sys.executable, *sys.argv, "--one", task, str(size)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            before = len(rows)
            for line in (x for x in done.stdout.splitlines() if x.startswith("ROW ")):
                r = json.loads(line[4:])
                r["command"] = r["command"].split(" --one")[0]
                rows.append(r)
            add_peer_ratio(rows)
            for r in rows[before:]:
                print(json.dumps(r), flush=True)
            if not args.no_write:
                write_rows("scale", rows)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
