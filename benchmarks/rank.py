"""Ranking-model benchmarks: test AUC / LogLoss, train wall time, peak memory (stage "rank").

python benchmarks/rank.py --dataset criteo-sample      # `given` splits, 5 seeds each
python benchmarks/rank.py --dataset avazu-sample
python benchmarks/rank.py --dataset ml-100k            # CTR task, `rs811` (seed 2024)
python benchmarks/rank.py --latency                    # DeepFM, 500 candidates, one user

ml-100k as a CTR task: every rating is an example, label = rating >= 4; split per user 80/10/10
after a seeded shuffle (the project's `rs811`, seed 2024); features: user id, item id, age
bucket, gender, occupation, zip prefix (2 chars), genres (multi-valued), hour and weekday of
the timestamp, and the user's last 20 items strictly before it (whole log, items only).
Early stopping on the validation/dev part; test is only scored once per run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np
import torch
from harness import cpu_seconds, data_path, load, row, write_rows

from funnelrec.batch import Batch, Schema
from funnelrec.context import FitContext
from funnelrec.data.loaders.ctr import load_avazu_sample, load_criteo_sample
from funnelrec.data.splits import split
from funnelrec.eval import metrics
from funnelrec.features import FeatureBuilder, FeatureConfig
from funnelrec.models.ctr import CTRConfig, build_model
from funnelrec.recall.merge import ChannelResult, merge
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import PRERANK, RANK
from funnelrec.train.examples import count_before, prefix_queries
from funnelrec.train.loop import seeded
from funnelrec.train.rows import TrainSettings, predict, train_model
from funnelrec.types import Candidates, Query

TABLE_MODELS = ("lr", "fm", "widedeep", "deepfm", "dcnv2", "xdeepfm", "autoint")
# chosen on dev AUC (criteo and avazu alike): small MLP, Adam weight decay, low-rank cross
TABLE_CONFIG = CTRConfig(dim=16, hidden=(64, 32), cross_rank=32)
# both cores of the 2-core machine, as the peers' frameworks used
TABLE_TRAIN = TrainSettings(epochs=20, batch_size=256, lr=1e-3, weight_decay=1e-3, threads=2)
# ml-100k (chosen on the validation part): long-term interest = user-id field, short-term =
# mean of the last 20 items' embeddings (GRU / Transformer encoders overfit here, see rows)
ML_CONFIG = CTRConfig(dim=16, hidden=(128, 64), interest="mean", cross_rank=32)
ML_TRAIN = TrainSettings(epochs=30, batch_size=1024, lr=3e-3, weight_decay=1e-4, threads=1)
NO_INTEREST = {"user_id": False, "seq_len": 0}
# (row name, model, feature overrides, config overrides) on ml-100k
ML_RUNS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    *[(m, m, {}, {}) for m in TABLE_MODELS],
    ("din", "din", {}, {"interest": "none"}),
    ("deepfm-no-interest", "deepfm", NO_INTEREST, {}),
    ("deepfm-long-only", "deepfm", {"seq_len": 0}, {}),
    ("deepfm-short-only", "deepfm", {"user_id": False}, {}),
    ("deepfm-gru", "deepfm", {}, {"interest": "gru"}),
    ("deepfm-transformer", "deepfm", {}, {"interest": "transformer"}),
    ("dcnv2-no-interest", "dcnv2", NO_INTEREST, {}),
    ("autoint-no-interest", "autoint", NO_INTEREST, {}),
    ("din-no-long", "din", {"user_id": False}, {"interest": "none"}),
]


def run(
    model: str, schema: Schema, parts: dict[str, Batch], cfg: CTRConfig, s: TrainSettings
) -> dict[str, float]:
    """Train on ``train`` (early stopping on ``dev``), score ``test``."""
    start = time.perf_counter()
    with seeded(s.seed):
        net = build_model(model, schema, cfg)
    result = train_model(net, parts["train"], parts["dev"], s)
    wall = time.perf_counter() - start
    logits = predict(net, parts["test"])
    y = parts["test"].label
    assert y is not None
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return {
        "auc": metrics.auc(y.numpy(), logits),
        "logloss": metrics.logloss(y.numpy(), prob),
        "train_s": wall,
        "epochs": result.epochs_run,
        "dev_auc": result.best_metric or 0.0,
    }


def repeat(
    key: tuple[str, str, str],
    model: str,
    data: tuple[Schema, dict[str, Batch]],
    cfg: CTRConfig,
    base: TrainSettings,
    seeds: int,
) -> dict[str, Any]:
    """``run`` with seeds ``0..seeds-1``; one row ``key`` = (dataset, protocol, name) with the
    means (and ``auc_std`` over seeds); ``wall_s`` is per seed (training + test scoring)."""
    start, cpu0 = time.perf_counter(), cpu_seconds()
    res = [run(model, *data, cfg, dataclasses.replace(base, seed=seed)) for seed in range(seeds)]
    mean = {k: float(np.mean([r[k] for r in res])) for k in res[0]}
    if seeds > 1:
        mean["auc_std"] = float(np.std([r["auc"] for r in res]))
    wall, cpu_s = (time.perf_counter() - start) / seeds, (cpu_seconds() - cpu0) / seeds
    r = row(*key, "rank", mean, wall, cpu_s, seeds=seeds)
    print(r["model"], r["metrics"], flush=True)
    return r


def table_benchmark(dataset: str, seeds: int, models: list[str]) -> list[dict[str, Any]]:
    loader = load_criteo_sample if dataset == "criteo-sample" else load_avazu_sample
    schema, parts = loader(data_path(dataset)).encode(min_count=2)
    parts = {"train": parts["train"], "dev": parts["dev"], "test": parts["test"]}
    data = (schema, parts)
    return [
        repeat((dataset, "given", m), m, data, TABLE_CONFIG, TABLE_TRAIN, seeds) for m in models
    ]


def movielens_parts(features: FeatureConfig) -> tuple[Schema, dict[str, Batch]]:
    """ml-100k CTR batches for the ``rs811`` (seed 2024) train/valid/test parts."""
    data = load("ml-100k")
    parts = split(data, "rs811", seed=2024)
    builder = FeatureBuilder(features).fit(parts.train)
    out = {}
    for name, part in (("train", parts.train), ("dev", parts.valid), ("test", parts.test)):
        a = part.arrays
        query = prefix_queries(data, a.user_idx, count_before(data, a.user_idx, a.timestamp))
        query = query.with_k(1)
        offsets = np.arange(len(a.item_idx) + 1, dtype=np.int64)
        cands = Candidates.from_flat(offsets, a.item_idx, np.zeros(len(a.item_idx)), None)
        label = (a.feedback["rating"] >= 4).astype(np.float32)
        out[name] = builder.build(query, cands).with_labels(torch.from_numpy(label))
    return builder.schema, out


ML_FEATURES = FeatureConfig(
    user_columns=["age", "gender", "occupation", "zip"],
    item_columns=[],
    prefix={"zip": 2},
    popularity=False,
    recall=False,
    seq_len=20,
)


def movielens_benchmark(seeds: int, only: list[str] | None) -> list[dict[str, Any]]:
    out = []
    cache: dict[str, tuple[Schema, dict[str, Batch]]] = {}
    for name, model, feats, cfg in ML_RUNS:
        if only and name not in only:
            continue
        key = repr(sorted(feats.items()))
        if key not in cache:
            cache[key] = movielens_parts(ML_FEATURES.model_copy(update=feats))
        config = dataclasses.replace(ML_CONFIG, **cfg)
        key3 = ("ml-100k", "rs811", name)
        out.append(repeat(key3, model, cache[key], config, ML_TRAIN, seeds))
    return out


def latency_benchmark(repeats: int = 300) -> list[dict[str, Any]]:
    """Scoring latency for one user (features + model, 1 thread): DeepFM ranker over 500
    candidates, two-tower pre-ranker over 1,500 (ml-100k has 1,682 items)."""
    parts = split(load("ml-100k"), "loo")
    popular = PopularRecall().fit(parts.train)

    def retrieve(q: Query) -> Candidates:
        return merge([ChannelResult("popular", popular.retrieve(q, 1500), 1500)], "rank")

    out = []
    fast = {"epochs": 1, "max_queries": 2000, "threads": 1}
    cases = [("rank", RANK, "ctr", "deepfm", 500), ("prerank", PRERANK, "light", "twotower", 1500)]
    for stage, registry, name, model, n in cases:
        ctx = FitContext(retrieve=retrieve)
        scorer = registry.create(name, {**fast, "model": model}).fit(parts.train, ctx)
        query = parts.test_query(parts.test_users()[:1], 10)
        cands = retrieve(query).truncate(n)
        torch.set_num_threads(1)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            scorer.score(query, cands)
            times.append((time.perf_counter() - start) * 1000)
        p50, p99 = np.percentile(times, [50, 99])
        metrics_ = {"p50_ms": p50, "p99_ms": p99, "items_per_s": len(cands) / (p50 / 1000)}
        r = row(
            "ml-100k", "loo", f"{model}-latency-{len(cands)}", stage, metrics_, sum(times) / 1000
        )
        print(r["model"], r["metrics"], flush=True)
        out.append(r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="criteo-sample")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--models", default=None, help="comma-separated subset")
    parser.add_argument("--latency", action="store_true", help="scoring latency only")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    only = args.models.split(",") if args.models else None
    if args.latency:
        rows = latency_benchmark()
    elif args.dataset == "ml-100k":
        rows = movielens_benchmark(args.seeds or 3, only)
    else:
        rows = table_benchmark(args.dataset, args.seeds or 5, only or list(TABLE_MODELS))
    if not args.no_write:
        write_rows("rank", rows)


if __name__ == "__main__":
    main()
