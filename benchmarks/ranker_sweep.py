"""LambdaMART settings on a funnel's validation lists (how the ``[rank]`` params of the
``*-funnel.toml`` configs were chosen; test data is never read).

    python benchmarks/ranker_sweep.py --dataset ml-100k --config configs/ml-100k-funnel.toml \\
        --variants '[{"lambdarank_truncation_level": 50}, {"lambdarank_truncation_level": 30}]'

Builds the funnel's out-of-fold training lists and its validation lists (history = training
part, labels = validation items) once, then trains LightGBM ``lambdarank`` for every variant
(LightGBM parameter overrides) and prints NDCG@10 over all validation users, early stopping
on the same lists by the ranker's rule (``SmoothedEarlyStopping``; LightGBM's own rule's choice
on the same curve is printed beside it); ``--rank-features`` adds each full score's rank within
its list. Prints the single-channel orders on the same lists for comparison.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import lightgbm as lgb
import numpy as np
from harness import load

from funnelrec import stacking
from funnelrec.config import load_config
from funnelrec.context import FitContext, fit_stage
from funnelrec.data.splits import split
from funnelrec.funnel_features import FunnelFeatureConfig, FunnelFeatures
from funnelrec.pipeline import Funnel
from funnelrec.rank.lambdamart import _with_positives
from funnelrec.train.boosting import SmoothedEarlyStopping

BASE = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": 0.05,
    "num_leaves": 15, "min_data_in_leaf": 200, "lambda_l2": 10.0, "feature_fraction": 0.8,
    "seed": 0, "num_threads": 2, "verbosity": -1, "deterministic": True, "force_row_wise": True,
}  # fmt: skip


def ndcg_all(scores: Any, labels: Any, groups: Any, n_users: int) -> float:
    """NDCG@10 summed over the lists, divided by all validation users (full ranking)."""
    total, start = 0.0, 0
    for g in groups:
        s, lab = scores[start : start + g], labels[start : start + g]
        start += g
        top = np.argsort(-s, kind="stable")[:10]
        gain = (lab[top] / np.log2(np.arange(2, len(top) + 2))).sum()
        ideal = (1 / np.log2(np.arange(2, min(int(lab.sum()), 10) + 2))).sum()
        total += gain / ideal if ideal else 0.0
    return total / n_users


def list_ranks(x: Any, groups: Any, cols: list[int]) -> Any:
    """``log2(2 + rank)`` of each column's value within its list."""
    rows = np.repeat(np.arange(len(groups)), groups)
    starts = np.repeat(np.cumsum(groups) - groups, groups)
    out = []
    for j in cols:
        order = np.lexsort((-np.nan_to_num(x[:, j], nan=-np.inf), rows))
        rank = np.empty(len(rows))
        rank[order] = np.arange(len(rows)) - starts[order]
        out.append(np.log2(2 + rank))
    return np.stack(out, 1).astype(np.float32)


def lightgbm_rule(curve: list[float], patience: int) -> int:
    """Trees ``lgb.early_stopping(patience)`` would keep on this validation curve: the best
    raw round, stopping ``patience`` rounds after it (the curve's end if it never stops)."""
    best = 0
    for i, value in enumerate(curve):
        if value > curve[best]:
            best = i
        if i - best >= patience:
            break
    return best + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--config", required=True)
    parser.add_argument("--variants", default="[{}]", help="JSON list of LightGBM overrides")
    parser.add_argument("--rank-features", action="store_true")
    args = parser.parse_args()
    config = load_config(args.config)
    parts = split(load(args.dataset), "loo")
    funnel = Funnel(config)
    oof = stacking.oof_examples(parts.train, config.recall, config.fit, config.seed, {})
    for channel in funnel.channels.values():
        fit_stage(channel, parts.train, FitContext())
    valid = stacking.valid_examples(parts.train, parts.valid, funnel.recall)
    assert valid is not None
    n_users = valid.query.batch_size
    features = FunnelFeatures(FunnelFeatureConfig()).fit(parts.train, oof.candidates)
    names = list(features.names)
    tr, va = _with_positives(oof), _with_positives(valid)
    x_tr, x_va = features.build(tr.query, tr.candidates), features.build(va.query, va.candidates)
    g_tr, g_va = tr.candidates.lengths(), va.candidates.lengths()
    for col in [n for n in names if n.startswith(("full_score", "score:")) or n == "recall_score"]:
        j = names.index(col)
        single = ndcg_all(np.nan_to_num(x_va[:, j], nan=-1e9), va.labels, g_va, n_users)
        print(f"single {col}: {single:.4f}")
    if args.rank_features:
        cols = [i for i, n in enumerate(names) if n.startswith("full_score")]
        x_tr = np.hstack([x_tr, list_ranks(x_tr, g_tr, cols)])
        x_va = np.hstack([x_va, list_ranks(x_va, g_va, cols)])
        names += [f"list_rank:{names[i]}" for i in cols]
    for variant in json.loads(args.variants):
        d_tr = lgb.Dataset(
            x_tr, tr.labels, group=g_tr, feature_name=[n.replace(":", "__") for n in names]
        )
        d_va = lgb.Dataset(x_va, va.labels, group=g_va, reference=d_tr)
        stop = SmoothedEarlyStopping("ndcg@10")
        booster = lgb.train({**BASE, **variant}, d_tr, 500, valid_sets=[d_va], callbacks=[stop])
        score = ndcg_all(booster.predict(x_va, num_iteration=stop.best_iteration),
                         va.labels, g_va, n_users)  # fmt: skip
        raw = lightgbm_rule(stop.curve, 50)
        print(
            f"{json.dumps(variant)}: valid NDCG@10 {score:.4f} trees {stop.best_iteration}"
            f" (smoothed {stop.best_smoothed:.4f}, {len(stop.curve)} rounds trained);"
            f" LightGBM's rule (patience 50): {raw} trees, NDCG@10 {stop.curve[raw - 1]:.4f}"
        )


if __name__ == "__main__":
    main()
