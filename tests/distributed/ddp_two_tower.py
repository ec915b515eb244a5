"""Train a small two-tower on the synthetic world and write its validation NDCG@10 as JSON.

Run directly (one process) or under ``torchrun`` (rank 0 writes the file)::

    python tests/distributed/ddp_two_tower.py OUT.json --batch-size 256
    torchrun --standalone --nproc_per_node=2 tests/distributed/ddp_two_tower.py OUT.json \
        --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from funnelrec.data.splits import split
from funnelrec.data.synthetic import generate
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.two_tower import TwoTowerRecall
from funnelrec.train import distributed

EPOCHS = 6


def train_and_score(batch_size: int, epochs: int = EPOCHS) -> dict[str, Any]:
    """Fit (one process, or this rank of a group) and score on the ``loo`` valid part."""
    ctx = distributed.current()
    parts = split(generate(n_users=400, n_items=300, n_interactions=12_000, seed=7), "loo")
    start = time.perf_counter()
    tower = TwoTowerRecall(
        dim=32, lr=0.005, recent=3, use_user_id=False, epochs=epochs, early_stop=False,
        batch_size=batch_size, threads=1, seed=0, id_dropout=0.0,
    ).fit(parts.train)  # fmt: skip
    seconds = time.perf_counter() - start
    result = evaluate(lambda q: tower.retrieve(q, q.k), parts, ks=(10,), part="valid")
    world = 1 if ctx is None else ctx.world_size
    return {
        "ndcg@10": result.metrics["ndcg@10"],
        "world_size": world,
        "global_batch": batch_size * world,
        "loss": tower.fit_log_["loss"],
        "train_s": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-size", type=int, required=True, help="per process")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    if distributed.launched_by_torchrun():
        distributed.init()
    out = train_and_score(args.batch_size, args.epochs)
    if distributed.is_main():
        args.out.write_text(json.dumps(out))
    distributed.shutdown()


if __name__ == "__main__":
    main()
