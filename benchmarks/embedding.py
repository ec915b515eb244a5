"""Embedding recall channels (mf, two_tower, youtube_dnn) as stand-alone recommenders.

    python benchmarks/embedding.py --dataset ml-100k --protocol loo --model mf --model two_tower

Each channel is fitted on the protocol's train part; inside ``fit`` it holds out its own
validation split (``valid_protocol``) for early stopping, so the protocol's valid/test parts
are never used for tuning. Test users get 200 items; Recall@K/NDCG@K over their test items,
train/valid items excluded (the evaluator of ``benchmarks/recall.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from harness import load, row, write_rows

from funnelrec.data.splits import split
from funnelrec.eval.head_bias import head_bias
from funnelrec.eval.protocol import evaluate
from funnelrec.registry import RECALL

# Params per (dataset, protocol) and model ("mf:softmax" = channel "mf" with its own params),
# chosen on each channel's internal validation split. Missing entries use channel defaults.
# loo: history models use the latest items (``recent``); rs811 (random split): histories
# are "all other items" and the model is refit on all training data for the best epochs.
_FAST_BPR = {"lr": 0.005, "batch_size": 2048, "init_std": 0.03}
_SOFTMAX_MF = {"loss": "softmax", "lr": 0.005, "n_extra": 1024, "init_std": 0.03}
_RS811 = {"valid_protocol": "rs811", "refit": True}
PARAMS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("ml-100k", "loo"): {
        "mf": _FAST_BPR,
        "mf:softmax": _SOFTMAX_MF,
        "two_tower": {"recent": 3, "use_user_id": False, "lr": 0.005},
        "youtube_dnn": {"recent": 1, "max_history": 20, "lr": 0.005},
    },
    ("ml-100k", "rs811"): {
        "mf": {**_RS811, "lr": 0.001, "batch_size": 2048, "patience": 10},
        "mf:softmax": {**_RS811, **_SOFTMAX_MF},
        "two_tower": {**_RS811, "history_mode": "others"},
        "youtube_dnn": {**_RS811, "history_mode": "others"},
    },
    ("amazon-beauty-seq", "loo"): {
        "mf": _FAST_BPR,
        "mf:softmax": _SOFTMAX_MF,
        "two_tower": {"recent": 1, "max_history": 20, "use_user_id": False, "lr": 0.005},
        "youtube_dnn": {"recent": 1, "max_history": 20, "lr": 0.005},
    },
}


def run(dataset: str, protocol: str, model: str, override: dict[str, Any]) -> dict[str, Any]:
    data = load(dataset)
    parts = split(data, protocol)
    params = {**PARAMS.get((dataset, protocol), {}).get(model, {}), **override}
    start = time.perf_counter()
    channel = RECALL.create(model.split(":")[0], params).fit(parts.train)
    fit_s = time.perf_counter() - start
    result = evaluate(lambda q: channel.retrieve(q, q.k), parts, ks=(10, 20, 50, 200))
    keep = ("recall@10", "recall@20", "recall@50", "recall@200", "ndcg@10", "hit@10")
    metrics = {k: v for k, v in result.metrics.items() if k in keep}
    metrics.update(head_bias(lambda q: channel.retrieve(q, q.k), parts, k=10))
    log = channel.fit_log_
    return row(
        dataset, protocol, model, "recall", metrics, time.perf_counter() - start,
        fit_s=round(fit_s, 2), epochs=log["epochs_run"], best_epoch=log["best_epoch"],
        internal_valid=log["best_metric"],
        params=params, n_users=result.n_users,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--model", action="append", help="channel[:variant] (repeatable)")
    parser.add_argument("--params", default="{}", help="JSON params overriding PARAMS")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (capped at 2)")
    parser.add_argument("--no-write", action="store_true", help="print only (for tuning)")
    args = parser.parse_args()
    torch.set_num_threads(min(args.threads, 2))
    override = json.loads(args.params)
    models = args.model or ["mf", "mf:softmax", "two_tower", "youtube_dnn"]
    rows = [run(args.dataset, args.protocol, m, override) for m in models]
    for r in rows:
        print(r["model"], r["metrics"], f"fit {r['fit_s']} s", f"epochs {r['epochs']}",
              f"internal valid {r['internal_valid']}")  # fmt: skip
    if not args.no_write:
        write_rows("embedding", rows)


if __name__ == "__main__":
    main()
