"""Embedding and global-preference recall channels as stand-alone recommenders.

    python benchmarks/embedding.py --dataset ml-100k --protocol loo --model mf --model two_tower
    python benchmarks/embedding.py --dataset ml-100k --model als --model ease \
        --model implicit-als --model implicit-bpr            # channels and peers, one run
    python benchmarks/embedding.py --dataset ml-100k --model als --tune   # grid on validation
    python benchmarks/embedding.py --dataset amazon-beauty-seq --model als --model ease --tune ease
    python benchmarks/embedding.py --dataset ml-100k --model mf --tune mf --seeds 0 1 2 3

``mf``, ``two_tower``, ``youtube_dnn``: fitted on the protocol's train part; inside ``fit`` the
channel holds out its own validation split (``valid_protocol``) for early stopping, so the
protocol's valid/test parts are never used for tuning.

``FIT_ON_HISTORY`` models (``als``, ``ease``, ``mf`` with ``refit``, and the ``implicit-*``
peers): params are chosen on the validation part (fit on train, NDCG@10 on valid; ``--tune``
searches ``GRIDS`` and keeps the argmax), then the model is fitted on train + validation — the
test-time history every model sees — and scored on test. ``mf`` gets the same through its own
early stopping (its inner loo split of train + validation holds out exactly the validation
item) and ``refit``; its row's ``procedure_valid`` is the whole procedure (early stopping +
refit) fitted on train and scored on valid, the figure comparable with the peers'
``internal_valid``. One mf fit is noisy from seed to seed, so ``--tune mf --seeds 0 1 2 3``
scores each grid point by its mean over seeds. Peers need ``pip install implicit`` (a runtime
dependency already).

Test users get 200 items; Recall@K/NDCG@K over their test items, train/valid items excluded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np
import torch
from harness import cpu_seconds, load, peak_mb, row, write_rows
from implicit_peers import fit_peer

from funnelrec.data.splits import split
from funnelrec.eval.head_bias import head_bias
from funnelrec.eval.protocol import evaluate
from funnelrec.registry import RECALL

# Params per (dataset, protocol) and model ("mf:softmax" = channel "mf" with its own params),
# chosen on each channel's internal validation split. Missing entries use channel defaults.
# loo: history models use the latest items (``recent``); rs811 (random split): histories
# are "all other items" and the model is refit on all training data for the best epochs.
# mf (BPR): the channel's defaults since issue #24, spelled out so the rows show them; ``l2``
# and ``patience`` by ``--tune mf --seeds 0 1 2 3`` on ml-100k (see GRIDS). The other mf rows
# pin the settings they were measured with (``l2`` 0, patience 5, batch 1024: the defaults
# then).
_BPR_MF = {"lr": 0.005, "batch_size": 2048, "init_std": 0.03, "l2": 1e-3, "patience": 10}
_SOFTMAX_MF = {
    "loss": "softmax", "lr": 0.005, "n_extra": 1024, "init_std": 0.03,
    "batch_size": 1024, "l2": 0.0, "patience": 5,
}  # fmt: skip
_RS811 = {"valid_protocol": "rs811", "refit": True}
# two_tower:bf16 = the same with the softmax's products on bfloat16 inputs (``precision``)
_TT_ML100K = {"recent": 3, "use_user_id": False, "lr": 0.005}
_TT_BEAUTY = {"recent": 1, "max_history": 20, "use_user_id": False, "lr": 0.005}
# als / ease / implicit-als: the argmax of ``--tune`` on validation (the grids below; the peer
# gets the params our channel chose, so both sides are tuned alike); implicit-bpr: the
# library's defaults (factors 100, lr 0.01, regularization 0.01, 100 iterations), fitted on one
# thread (its threaded SGD is not reproducible; see implicit_peers.fit_peer).
PARAMS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("ml-100k", "loo"): {
        "mf": _BPR_MF,
        "mf:softmax": _SOFTMAX_MF,
        "als": {"factors": 256, "regularization": 10.0, "alpha": 1.0},
        "implicit-als": {"factors": 256, "regularization": 10.0, "alpha": 1.0},
        "ease": {"l2": 100.0},
        "two_tower": _TT_ML100K,
        "two_tower:bf16": {**_TT_ML100K, "precision": "bfloat16"},
        "youtube_dnn": {"recent": 1, "max_history": 20, "lr": 0.005},
    },
    ("ml-100k", "rs811"): {
        "mf": {**_RS811, "lr": 0.001, "batch_size": 2048, "patience": 10, "l2": 0.0},
        "mf:softmax": {**_RS811, **_SOFTMAX_MF},
        "two_tower": {**_RS811, "history_mode": "others"},
        "youtube_dnn": {**_RS811, "history_mode": "others"},
    },
    ("amazon-beauty-seq", "loo"): {
        "mf": _BPR_MF,
        "mf:softmax": _SOFTMAX_MF,
        "als": {"factors": 256, "regularization": 1.0, "alpha": 5.0},
        "implicit-als": {"factors": 256, "regularization": 1.0, "alpha": 5.0},
        "ease": {"l2": 200.0},
        "two_tower": _TT_BEAUTY,
        "two_tower:bf16": {**_TT_BEAUTY, "precision": "bfloat16"},
        "youtube_dnn": {"recent": 1, "max_history": 20, "lr": 0.005},
    },
}


FIT_ON_HISTORY = {"als", "ease", "mf", "implicit-als", "implicit-bpr"}
# Grids searched on the validation part by --tune (argmax of valid NDCG@10).
_ALS_GRID: dict[str, list[Any]] = {
    "factors": [64, 128, 256],
    "regularization": [1.0, 10.0, 50.0],
    "alpha": [1.0, 5.0, 20.0],
}
GRIDS: dict[str, dict[str, list[Any]]] = {
    "als": _ALS_GRID,
    "implicit-als": _ALS_GRID,
    "ease": {"l2": [10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0]},
    # mf: the whole procedure (its own early stopping + refit) fitted on train, scored on
    # valid; noisy from seed to seed, so tune it with --seeds 0 1 2 3 (mean over seeds)
    "mf": {"l2": [0.0, 3e-4, 1e-3, 3e-3], "patience": [5, 10]},
}
# Smaller grids where one fit is expensive (Beauty: 12k items, so one EASE inverse is 12k³).
DATASET_GRIDS: dict[str, dict[str, dict[str, list[Any]]]] = {
    "amazon-beauty-seq": {
        "ease": {"l2": [50.0, 200.0, 500.0]},
        "als": {"factors": [64, 256], "regularization": [1.0, 10.0], "alpha": [1.0, 5.0]},
        "implicit-als": {"factors": [64, 256], "regularization": [1.0, 10.0], "alpha": [1.0, 5.0]},
    }
}
RULE = (
    "params: argmax of NDCG@10 on the validation part over the --tune grid (fit on train); "
    "then fit on train + valid"
)


def recommender(model: str, data: Any, params: dict[str, Any], threads: int) -> tuple[Any, Any]:
    """``(recommend function, fitted channel or None)`` of a channel or an implicit peer."""
    if model.startswith("implicit-"):
        return fit_peer(model, data, params, threads), None
    channel = RECALL.create(model.split(":")[0], params).fit(data)
    return (lambda q: channel.retrieve(q, q.k)), channel


def valid_ndcg(
    model: str, parts: Any, params: dict[str, Any], threads: int, seeds: list[int] | None = None
) -> float:
    """NDCG@10 on the validation part of ``model`` fitted on the train part (with ``seeds``:
    the mean over fits with each of those seeds)."""
    values = []
    for seed in seeds or [None]:
        fit_params = params if seed is None else {**params, "seed": seed}
        recommend, _ = recommender(model, parts.train, fit_params, threads)
        result = evaluate(recommend, parts, ks=(10,), part="valid")
        values.append(float(result.metrics["ndcg@10"]))
    return float(np.mean(values))


def tune(
    model: str,
    dataset: str,
    parts: Any,
    base: dict[str, Any],
    threads: int,
    seeds: list[int] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Best params of the model's grid on validation and every ``(params, valid)`` tried."""
    grid = DATASET_GRIDS.get(dataset, {}).get(model, GRIDS.get(model, {}))
    names = sorted(grid)
    tried = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = {**base, **dict(zip(names, values, strict=True))}
        tried.append((params, valid_ndcg(model, parts, params, threads, seeds)))
        print(model, params, "valid ndcg@10", round(tried[-1][1], 4), flush=True)
    best = max(tried, key=lambda t: t[1])[0] if tried else base
    return best, [{**{n: p[n] for n in names}, "valid": round(v, 4)} for p, v in tried]


MF_RULE = (
    "early stopping on NDCG@10 of the inner loo split (= the valid item); procedure_valid: "
    "the whole mf fit (early stopping + refit) on train, NDCG@10 on valid"
)


def choose(
    model: str,
    dataset: str,
    parts: Any,
    params: dict[str, Any],
    search: bool,
    threads: int,
    seeds: list[int] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Params of a ``FIT_ON_HISTORY`` model and the validation fields of its row."""
    key = "procedure_valid" if model == "mf" else "internal_valid"
    extra: dict[str, Any] = {}
    if model in ("als", "ease"):
        params = {"threads": threads, **params}
    if search:
        params, extra["grid"] = tune(model, dataset, parts, params, threads, seeds)
        extra[key] = max(g["valid"] for g in extra["grid"])
        extra["tune_seeds"] = seeds
    else:
        extra[key] = round(valid_ndcg(model, parts, params, threads), 4)
    extra["rule"] = RULE if model in GRIDS else "library defaults"
    if model == "mf":
        how = " (mean over tune_seeds)" if search else ", run as --tune mf --seeds 0 1 2 3"
        extra["rule"] = f"{MF_RULE}; l2 and patience: {RULE}{how} on ml-100k"
    return params, extra


def run(
    dataset: str,
    protocol: str,
    model: str,
    override: dict[str, Any],
    search: bool,
    threads: int,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    data = load(dataset)
    parts = split(data, protocol)
    params = {**PARAMS.get((dataset, protocol), {}).get(model, {}), **override}
    on_history = model in FIT_ON_HISTORY
    extra: dict[str, Any] = {}
    if on_history:
        params, extra = choose(model, dataset, parts, params, search, threads, seeds)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    recommend, channel = recommender(
        model, parts.history if on_history else parts.train, params, threads
    )
    fit_s = time.perf_counter() - start
    fit_peak = peak_mb()
    result = evaluate(recommend, parts, ks=(10, 20, 50, 200))
    keep = ("recall@10", "recall@20", "recall@50", "recall@200", "ndcg@10", "hit@10")
    metrics = {k: v for k, v in result.metrics.items() if k in keep}
    metrics.update(head_bias(recommend, parts, k=10))
    log = getattr(channel, "fit_log_", None)
    if log is not None:
        extra.update(epochs=log["epochs_run"], best_epoch=log["best_epoch"])
        extra["internal_valid"] = log["best_metric"]
        extra.setdefault("rule", MF_RULE.split(";")[0])
    return row(
        dataset, protocol, model, "recall", metrics, time.perf_counter() - start,
        cpu_s=cpu_seconds() - cpu0,
        fit_s=round(fit_s, 2), fit_peak_mb=round(fit_peak, 1),
        fit_on="train+valid" if on_history else "train", params=params,
        n_users=result.n_users, **extra,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--model", action="append", help="channel[:variant] (repeatable)")
    parser.add_argument("--params", default="{}", help="JSON params overriding PARAMS")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (capped at 2)")
    parser.add_argument("--no-write", action="store_true", help="print only (for tuning)")
    parser.add_argument(
        "--seeds", nargs="*", type=int, default=None, help="--tune: mean valid over these seeds"
    )
    parser.add_argument(
        "--tune", nargs="*", default=None, help="search GRIDS on validation (these models; all)"
    )
    args = parser.parse_args()
    torch.set_num_threads(min(args.threads, 2))
    override = json.loads(args.params)
    models = args.model or ["mf", "mf:softmax", "two_tower", "youtube_dnn"]
    threads = min(args.threads, 2)
    tuned = set(models if args.tune == [] else args.tune or [])
    for m in models:  # each row is written as soon as it is measured
        r = run(args.dataset, args.protocol, m, override, m in tuned, threads, args.seeds)
        print(r["model"], r["metrics"], f"fit {r['fit_s']} s", f"peak {r['fit_peak_mb']} MB",
              f"epochs {r.get('epochs')}", f"internal valid {r.get('internal_valid')}",
              flush=True)  # fmt: skip
        if not args.no_write:
            write_rows("embedding", [r])


if __name__ == "__main__":
    main()
