"""Graph and knowledge-graph recall (issue 5).

    python benchmarks/graph.py --suite ml-100k --protocol loo      # LightGCN vs MF-BPR
    python benchmarks/graph.py --suite ml-100k --protocol rs811
    python benchmarks/graph.py --suite lastfm-kg                   # split622, seed 2024
    python benchmarks/graph.py --suite lastfm-kg-sparse            # users with < 5 train items
    python benchmarks/graph.py --suite ml-100k-cold                # 10% of items held out

``lastfm-kg`` follows KGCN's preprocessing (interactions with KG-linked artists only: 21,173
positives of 1,872 users) and protocol: a seeded 60/20/20 split of the interactions; AUC
scores every test positive against one item the user never interacted with, drawn
uniformly (KGCN's CTR protocol); Recall@20/NDCG@10 rank all items, train items excluded.
Every channel tunes itself on its own internal split of the training part only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import torch
from harness import cpu_seconds, data_path, load, row, write_rows

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders import load_kgcn
from funnelrec.data.splits import Split, split
from funnelrec.eval.metrics import auc
from funnelrec.eval.protocol import evaluate
from funnelrec.recall._embedding import EmbeddingRecall
from funnelrec.recall.base import RecallChannel
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query

SEED = 2024
_MF = {"lr": 0.005, "batch_size": 2048, "init_std": 0.03, "threads": 1}
_RS811 = {"valid_protocol": "rs811", "refit": True}
# (suite, protocol) -> model label -> (channel, params); chosen on internal validation only
MODELS: dict[tuple[str, str], dict[str, tuple[str, dict[str, Any]]]] = {
    ("ml-100k", "loo"): {
        "mf-bpr": ("mf", _MF),
        "lightgcn": ("lightgcn", {"patience": 5, "threads": 1}),
    },
    ("ml-100k", "rs811"): {
        "mf-bpr": ("mf", {**_RS811, **_MF, "lr": 0.001, "patience": 10}),
        "lightgcn": ("lightgcn", {**_RS811, "lr": 0.005, "patience": 10, "threads": 1}),
        "lightgcn:softmax": (
            "lightgcn",
            {**_RS811, "lr": 0.005, "loss": "softmax", "n_extra": 1024, "threads": 1},
        ),
    },
    ("lastfm-kg", "split622"): {
        "pop": ("popular", {}),
        "itemcf": ("itemcf", {}),
        "mf-bpr": ("mf", {**_MF, "valid_protocol": "rs811"}),
        "lightgcn": ("lightgcn", {"valid_protocol": "rs811", "patience": 5, "threads": 1}),
        "lightgcn-kg": (
            "lightgcn",
            {"kg": True, "valid_protocol": "rs811", "patience": 5, "threads": 1},
        ),
        "kg_expand-transe": ("kg_expand", {"model": "transe", "threads": 1}),
        "kg_expand-rotate": ("kg_expand", {"model": "rotate", "threads": 1}),
        "metapath": ("metapath", {}),
        "item2vec-eges": ("item2vec", {"threads": 1}),
    },
}
BEHAVIOUR = ("pop", "itemcf", "lightgcn")
KG_CHANNELS = ("lightgcn-kg", "kg_expand-transe", "metapath")
COLD = {
    "pop": ("popular", {}),
    "itemcf": ("itemcf", {}),
    "lightgcn": ("lightgcn", {"patience": 5, "threads": 1}),
    "item2vec-eges": ("item2vec", {"threads": 1}),
    "kg_expand-transe": ("kg_expand", {"threads": 1}),
    "metapath": ("metapath", {}),
}


def lastfm() -> Dataset:
    return load_kgcn(data_path("lastfm-kg"), kg_items_only=True)


# -- pair scores for AUC ------------------------------------------------------------------------
def pair_scores(channel: RecallChannel[Any], query: Query, items: np.ndarray[Any, Any]) -> Any:
    """Score of one item per query row, or ``None`` when the channel cannot score pairs."""
    if hasattr(channel, "score_pairs"):
        return channel.score_pairs(query, items)
    if isinstance(channel, EmbeddingRecall):
        batch, rows = channel._query_batch(query)
        out = np.full(query.batch_size, -np.inf, dtype=np.float32)
        with torch.no_grad():
            users = channel.model_.user_vectors(batch)
            vecs = channel.model_.item_vectors(torch.from_numpy(items[rows]))
        out[rows] = (users * vecs).sum(-1).numpy()
        return out
    if channel.registered_name == "popular":  # one global score per item
        scores = np.zeros(channel.ranked_items_.max() + 1, dtype=np.float32)
        scores[channel.ranked_items_] = channel.ranked_scores_
        return scores[np.minimum(items, len(scores) - 1)] * (items < len(scores))
    return None


def sampled_auc(channel: RecallChannel[Any], parts: Split, seed: int = SEED) -> float | None:
    """AUC of test positives against one uniformly drawn never-interacted item each."""
    test = parts.test.arrays
    users, pos = test.user_idx, test.item_idx
    full = parts.train.with_interactions(
        parts.history.interactions.vstack(parts.test.interactions)
    ).user_item
    rng = np.random.default_rng(seed)
    neg = rng.integers(0, parts.train.n_items, len(users))
    for _ in range(100):  # redraw the negatives that hit a positive
        bad = np.asarray(full[users, neg]).ravel() > 0
        if not bad.any():
            break
        neg[bad] = rng.integers(0, parts.train.n_items, int(bad.sum()))
    all_users = np.concatenate([users, users])
    items = np.concatenate([pos, neg])
    query = parts.train.query(all_users, 1)
    scores = pair_scores(channel, query, items)
    if scores is None:
        return None
    scores = np.where(np.isfinite(scores), scores, np.nanmin(scores[np.isfinite(scores)]) - 1)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    return auc(labels, scores)


# -- suites ---------------------------------------------------------------------------------------
def fit_channel(name: str, params: dict[str, Any], data: Dataset) -> tuple[Any, float]:
    start = time.perf_counter()
    channel = RECALL.create(name, params).fit(data)
    return channel, time.perf_counter() - start


def quality_rows(suite: str, protocol: str, only: list[str] | None) -> list[dict[str, Any]]:
    data = lastfm() if suite == "lastfm-kg" else load(suite)
    parts = split(data, protocol, seed=SEED if protocol == "split622" else 2020)
    rows = []
    for label, (name, params) in MODELS[(suite, protocol)].items():
        if only and label not in only:
            continue
        start, cpu0 = time.perf_counter(), cpu_seconds()
        channel, fit_s = fit_channel(name, params, parts.train)
        result = evaluate(lambda q, c=channel: c.retrieve(q, q.k), parts, ks=(10, 20, 200))
        keep = ("recall@10", "recall@20", "ndcg@10", "recall@200", "mrr@10", "hit@10")
        metrics = {k: v for k, v in result.metrics.items() if k in keep}
        if protocol == "split622":
            value = sampled_auc(channel, parts)
            if value is not None:
                metrics["auc"] = value
        log = getattr(channel, "fit_log_", {})
        rows.append(
            row(
                suite,
                protocol,
                label,
                "recall",
                metrics,
                time.perf_counter() - start,
                cpu_seconds() - cpu0,
                fit_s=round(fit_s, 2),
                epochs=log.get("epochs_run"),
                best_epoch=log.get("best_epoch"),
                params=params,
                n_users=result.n_users,
            )
        )
        print(label, {k: round(v, 4) for k, v in metrics.items()}, f"fit {fit_s:.1f} s")
    return rows


def fused(
    channels: dict[str, RecallChannel[Any]], depth: int, weights: dict[str, float] | None = None
) -> Callable[[Query], Candidates]:
    """Reciprocal-rank fusion of the channels' top ``depth`` (weight 1 unless given)."""
    weights = weights or {}

    def recommend(query: Query) -> Candidates:
        results = [
            ChannelResult(name, ch.retrieve(query, depth), quota=depth, weight=weights.get(name, 1))
            for name, ch in channels.items()
        ]
        return merge(results, "rrf").truncate(query.k)

    return recommend


def sparse_users(parts: Split, part: str) -> np.ndarray[Any, Any]:
    """Users of ``part`` with fewer than 5 training interactions."""
    n_train = np.bincount(parts.train.arrays.user_idx, minlength=parts.train.n_users)
    users = parts.test_users() if part == "test" else parts.valid_users()
    return users[n_train[users] < 5]


def sparse_user_rows() -> list[dict[str, Any]]:
    """Recall@20 for users with < 5 training interactions: behaviour-only vs + KG channels.

    The KG channels' fusion weight is chosen on the validation part (same users' rule)."""
    parts = split(lastfm(), "split622", seed=SEED)
    spec = MODELS[("lastfm-kg", "split622")]
    fitted = {}
    for label in (*BEHAVIOUR, *KG_CHANNELS):
        fitted[label] = fit_channel(*spec[label], parts.train)[0]
    behaviour = {k: fitted[k] for k in BEHAVIOUR}
    valid_users = sparse_users(parts, "valid")
    best_w, best = 1.0, -1.0
    for w in (0.1, 0.25, 0.5, 1.0):
        rec = fused(fitted, 100, dict.fromkeys(KG_CHANNELS, w))
        value = evaluate(rec, parts, ks=(20,), part="valid", users=valid_users).metrics
        print(f"valid: KG weight {w}: recall@20 {value['recall@20']:.4f}")
        if value["recall@20"] > best:
            best_w, best = w, value["recall@20"]
    variants: dict[str, Callable[[Query], Candidates]] = {
        label: (lambda q, c=ch: c.retrieve(q, q.k)) for label, ch in fitted.items()
    }
    variants["fused:behaviour"] = fused(behaviour, 100)
    variants["fused:behaviour+kg"] = fused(fitted, 100, dict.fromkeys(KG_CHANNELS, best_w))
    users = sparse_users(parts, "test")
    rows = []
    for label, recommend in variants.items():
        start, cpu0 = time.perf_counter(), cpu_seconds()
        result = evaluate(recommend, parts, ks=(10, 20), users=users)
        metrics = {k: result.metrics[k] for k in ("recall@20", "ndcg@10")}
        extra = {"kg_weight": best_w} if label == "fused:behaviour+kg" else {}
        rows.append(
            row(
                "lastfm-kg",
                "split622-cold",
                label,
                "recall",
                metrics,
                time.perf_counter() - start,
                cpu_seconds() - cpu0,
                n_users=result.n_users,
                note="test users with < 5 training interactions",
                **extra,
            )
        )
        print(label, {k: round(v, 4) for k, v in metrics.items()}, result.n_users)
    return rows


def cold_item_split(data: Dataset, share: float = 0.1) -> tuple[Split, np.ndarray[Any, Any]]:
    """``loo`` with ``share`` of the items held out of train/valid entirely; the test part
    keeps only the held-out items' interactions."""
    parts = split(data, "loo")
    rng = np.random.default_rng(SEED)
    cold = np.sort(rng.choice(data.n_items, int(share * data.n_items), replace=False))
    is_cold = pl.col("item_idx").is_in(cold.tolist())
    train = parts.train.with_interactions(parts.train.interactions.filter(~is_cold))
    valid = parts.valid.with_interactions(parts.valid.interactions.filter(~is_cold))
    test = parts.test.with_interactions(parts.test.interactions.filter(is_cold))
    return Split("loo-cold", train, valid, test), cold


def cold_rows() -> list[dict[str, Any]]:
    parts, cold = cold_item_split(load("ml-100k"))
    rows = []
    for label, (name, params) in COLD.items():
        start, cpu0 = time.perf_counter(), cpu_seconds()
        channel, fit_s = fit_channel(name, params, parts.train)
        result = evaluate(lambda q, c=channel: c.retrieve(q, q.k), parts, ks=(50,))
        metrics = {"recall@50": result.metrics["recall@50"]}
        rows.append(
            row(
                "ml-100k",
                "loo-cold",
                label,
                "recall",
                metrics,
                time.perf_counter() - start,
                cpu_seconds() - cpu0,
                fit_s=round(fit_s, 2),
                n_users=result.n_users,
                n_cold_items=len(cold),
            )
        )
        print(label, metrics, result.n_users)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--suite", required=True,
        choices=["ml-100k", "lastfm-kg", "lastfm-kg-sparse", "ml-100k-cold"],
    )  # fmt: skip
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--model", action="append", help="only these model labels")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.suite == "lastfm-kg-sparse":
        rows = sparse_user_rows()
    elif args.suite == "ml-100k-cold":
        rows = cold_rows()
    else:
        protocol = args.protocol or ("split622" if args.suite == "lastfm-kg" else "loo")
        rows = quality_rows(args.suite, protocol, args.model)
    if not args.no_write:
        write_rows("graph", rows)


if __name__ == "__main__":
    main()
