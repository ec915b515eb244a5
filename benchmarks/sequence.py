"""Sequence and multi-interest recall channels as stand-alone recommenders (``loo``).

    python benchmarks/sequence.py --dataset ml-100k --model sasrec --model gru4rec

Each channel is fitted on the protocol's train part (it holds out each user's last train item
for early stopping; the protocol's valid/test parts are never used for tuning). Test users
get 200 items from the channel; Recall@K/NDCG@K over their test item (full ranking, train and
valid items excluded), plus the head/interest measures of ``eval/interests.py`` at 200:
share of the top-1% popular items, coverage, history categories covered, test categories
hit and Recall@200 of users whose test item is in a minority interest. ``fit_s`` and
``cpu_s`` (process CPU seconds of the fit; the machine is shared, so wall time is inflated).
Variants ``name:variant`` use the params of ``PARAMS`` under that key.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from harness import dataset_label, load, row, write_rows

from funnelrec.data.splits import split
from funnelrec.eval.interests import interest_report
from funnelrec.eval.protocol import evaluate
from funnelrec.registry import RECALL

_SAS = {"lr": 0.002, "dropout": 0.2, "max_len": 50}
_SAS_BEAUTY = {
    "lr": 0.003, "dropout": 0.5, "max_len": 50, "loss": "sampled", "n_extra": 2048,
    "batch_size": 256,
}  # fmt: skip
# sasrec:bf16 = the same with the softmax's products on bfloat16 inputs (``precision``);
# sasrec:fastdrop = the same with counter-based dropout masks (``fast_dropout``)
# the mf source of pooling/cluster_interest as its rows were measured (mf defaults before #24,
# including no refit on all data after early stopping: f940247 made refit the default)
_MF_SOURCE = {
    "lr": 0.005,
    "batch_size": 2048,
    "init_std": 0.03,
    "l2": 0.0,
    "patience": 5,
    "refit": False,
}
PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "ml-100k": {
        "sasrec": {**_SAS, "lr": 0.003},
        "sasrec:fastdrop": {**_SAS, "lr": 0.003, "fast_dropout": True},
        "gru4rec": {"lr": 0.002, "dropout": 0.3, "max_len": 50, "batch_size": 32, "init_std": 0.1},
        "caser": {"lr": 0.002, "max_len": 5},
        "mind": {"lr": 0.002, "max_len": 50},
        "mind:k1": {"lr": 0.002, "max_len": 50, "n_interests": 1},
        "comirec_sa": {"lr": 0.002, "max_len": 50},
        "comirec_sa:k1": {"lr": 0.002, "max_len": 50, "n_interests": 1},
        "pooling": {"source_params": _MF_SOURCE, "mode": "decay"},
        "cluster_interest": {"source_params": _MF_SOURCE},
        "cluster_interest:k1": {"source_params": _MF_SOURCE, "n_interests": 1},
    },
    "amazon-beauty-seq": {
        "sasrec": _SAS_BEAUTY,
        "sasrec:bf16": {**_SAS_BEAUTY, "precision": "bfloat16"},
        "sasrec:fastdrop": {**_SAS_BEAUTY, "fast_dropout": True},
        "gru4rec": {"lr": 0.002, "dropout": 0.3, "max_len": 50},
        "caser": {"lr": 0.002, "max_len": 5},
        "mind": {"lr": 0.002, "max_len": 20},
        "mind:k1": {"lr": 0.002, "max_len": 20, "n_interests": 1},
        "comirec_sa": {"lr": 0.002, "max_len": 20},
        "comirec_sa:k1": {"lr": 0.002, "max_len": 20, "n_interests": 1},
        "pooling": {"source_params": _MF_SOURCE, "mode": "decay"},
        "cluster_interest": {"source_params": _MF_SOURCE},
        "cluster_interest:k1": {"source_params": _MF_SOURCE, "n_interests": 1},
    },
}


def params_for(dataset: str, data: Any, model: str) -> dict[str, Any]:
    """``PARAMS`` of a shared dataset; any other data (``--data PATH``) takes those of the
    shared dataset it resembles (a large sparse catalogue: Beauty's, else ml-100k's)."""
    if dataset not in PARAMS:
        dataset = "amazon-beauty-seq" if data.n_items > 5000 else "ml-100k"
    return PARAMS[dataset].get(model, {})


def run(dataset: str, model: str, override: dict[str, Any]) -> dict[str, Any]:
    data = load(dataset)
    parts = split(data, "loo")
    fields = RECALL.get(model.split(":")[0]).params_model.model_fields
    given = {k: v for k, v in override.items() if k in fields}  # where the channel takes it
    params = {**({"threads": 1} if "threads" in fields else {}), **params_for(dataset, data, model)}
    params.update(given)
    start, cpu = time.perf_counter(), time.process_time()
    channel = RECALL.create(model.split(":")[0], params).fit(parts.train)
    fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    recommend = lambda q: channel.retrieve(q, q.k)  # noqa: E731
    result = evaluate(recommend, parts, ks=(10, 20, 50, 200))
    keep = ("recall@10", "recall@20", "recall@50", "recall@200", "ndcg@10", "hit@10")
    metrics = {k: v for k, v in result.metrics.items() if k in keep}
    metrics.update(interest_report(recommend, parts, k=200))
    log: dict[str, Any] = getattr(channel, "fit_log_", {})  # training-free: no log
    return row(
        dataset_label(dataset), "loo", model, "recall", metrics, time.perf_counter() - start,
        fit_s=round(fit_s, 2), cpu_s=round(cpu_s, 2), epochs=log.get("epochs_run"),
        best_epoch=log.get("best_epoch"), internal_valid=log.get("best_metric"),
        params=params, n_users=result.n_users,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--model", action="append", help="channel[:variant] (repeatable)")
    parser.add_argument(
        "--params", default="{}", help="JSON params overriding PARAMS (where taken)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only (for tuning)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    override = json.loads(args.params)
    # the default suite: every channel's own row (speed variants only when named)
    suite = PARAMS.get(args.dataset, PARAMS["ml-100k"])
    models = args.model or [m for m in suite if not m.endswith((":bf16", ":fastdrop"))]
    for m in models:
        r = run(args.dataset, m, override)
        print(r["model"], r["metrics"], f"fit {r['fit_s']} s cpu {r['metrics'].get('cpu_s')} s",
              f"epochs {r['epochs']} best {r['best_epoch']}", flush=True)  # fmt: skip
        if not args.no_write:
            write_rows("sequence", [r])


if __name__ == "__main__":
    main()
