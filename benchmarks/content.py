"""Content vectors on ml-100k: item cold start and the two-tower with content features.

    python benchmarks/content.py --dataset ml-100k

Vectors: all-MiniLM-L6-v2 (``minilm``) over each movie's ``title. genres``, through the
content-hash cache (``artifacts/content-cache``), stored as the item-table column ``content``.

* ``item-cold`` (protocol): 10% of the items with interactions (seed 0) are held out of
  training entirely; train = every interaction with the other items, test = every
  interaction with the held-out items; full ranking over all items, train items excluded.
  Recall@50 of each channel on the held-out items' test interactions: behaviour-only
  channels cannot retrieve an item they never saw (0 by construction); the content channel
  and the two-tower with a content vector in its item tower can. ``content (cold slot)`` ranks
  only the held-out items (a new-item slot in the slate).
* ``loo``: the two-tower (``benchmarks/embedding.py`` params) with and without the content
  vector in its item tower: overall NDCG@10.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from harness import ROOT, cpu_seconds, load, row, write_rows

from funnelrec import ragged
from funnelrec.content import VectorCache, create_encoder, extract, item_texts
from funnelrec.content.store import with_vector_column
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.eval.protocol import evaluate
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query

# benchmarks/embedding.py's loo params; one torch thread (the shared 2-core machine)
TWO_TOWER = {"recent": 3, "use_user_id": False, "lr": 0.005, "threads": 1}
CHANNELS: dict[str, tuple[str, dict[str, Any]]] = {
    "popular": ("popular", {}),
    "itemcf": ("itemcf", {}),
    "mf": ("mf", {"lr": 0.005, "batch_size": 2048, "init_std": 0.03, "threads": 1}),
    "two_tower": ("two_tower", TWO_TOWER),
    "two_tower+content": ("two_tower", {**TWO_TOWER, "content_column": "content"}),
    "content": ("content", {"vector_column": "content", "history": 20}),
}


def with_content(data: Dataset, cache_dir: Path) -> tuple[Dataset, dict[str, Any]]:
    encoder = create_encoder("minilm")
    cache = VectorCache(cache_dir, encoder.fingerprint, encoder.dim)
    vectors, report = extract(item_texts(data.items, ["title", "tags"]), encoder, cache)
    return with_vector_column(data, vectors, "content"), report.to_dict()


def item_cold_split(data: Dataset, share: float, seed: int) -> tuple[Split, np.ndarray[Any, Any]]:
    """Hold ``share`` of the items with interactions out of training entirely."""
    seen = np.flatnonzero(data.item_popularity > 0)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(seen, size=round(share * len(seen)), replace=False))
    is_cold = pl.col("item_idx").is_in(cold.tolist())
    train = data.with_interactions(data.interactions.filter(~is_cold))
    test = data.with_interactions(data.interactions.filter(is_cold))
    valid = data.with_interactions(data.interactions.head(0))
    return Split("item-cold", train, valid, test), cold


def only_items(recommend: Any, allowed: np.ndarray[Any, Any], n_items: int) -> Any:
    """Wrap ``recommend`` so that every item outside ``allowed`` is excluded."""
    banned = np.setdiff1d(np.arange(n_items), allowed)

    def run(query: Query) -> Candidates:
        b = query.batch_size
        rows = np.concatenate(
            [ragged.row_ids(query.exclude_offsets), np.repeat(np.arange(b), len(banned))]
        )
        items = np.concatenate([query.exclude_items, np.tile(banned, b)])
        order = np.argsort(rows, kind="stable")
        q = dataclasses.replace(
            query,
            exclude_offsets=ragged.offsets_from_row_ids(rows[order], b),
            exclude_items=items[order].astype(np.int64),
        )
        return recommend(q)  # type: ignore[no-any-return]

    return run


def run_channel(name: str, parts: Split, dataset: str, restrict: Any = None) -> dict[str, Any]:
    kind, params = CHANNELS[name]
    start, cpu0 = time.perf_counter(), cpu_seconds()
    channel = RECALL.create(kind, params).fit(parts.train)
    fit_s = time.perf_counter() - start

    def recommend(q: Query) -> Candidates:
        return channel.retrieve(q, q.k)

    fn = recommend if restrict is None else only_items(recommend, restrict, parts.train.n_items)
    result = evaluate(fn, parts, ks=(10, 50))
    keep = ("recall@10", "recall@50", "ndcg@10", "hit@10")
    metrics = {k: v for k, v in result.metrics.items() if k in keep}
    model = name if restrict is None else f"{name} (cold slot)"
    wall = time.perf_counter() - start
    print(f"{parts.protocol} {model}: {metrics} ({wall:.0f} s)", flush=True)
    return row(dataset, parts.protocol, model, "recall", metrics, wall, cpu_seconds() - cpu0,
               fit_s=round(fit_s, 2),
               params=params, n_users=result.n_users)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", action="append", choices=["cold", "loo"])
    parser.add_argument("--model", action="append", choices=sorted(CHANNELS))
    parser.add_argument("--cache", type=Path, default=ROOT / "artifacts" / "content-cache")
    args = parser.parse_args()
    data, report = with_content(load(args.dataset), args.cache)
    print(f"content vectors: {report}", flush=True)
    rows = []
    models = args.model or list(CHANNELS)
    if "cold" in (args.part or ["cold", "loo"]):
        parts, cold = item_cold_split(data, args.share, args.seed)
        for name in models:
            rows.append(run_channel(name, parts, args.dataset))
        if "content" in models:
            rows.append(run_channel("content", parts, args.dataset, restrict=cold))
    if "loo" in (args.part or ["cold", "loo"]):
        parts = split(data, "loo")
        for name in ("two_tower", "two_tower+content"):
            if name in models:
                rows.append(run_channel(name, parts, args.dataset))
    write_rows("content", rows)


if __name__ == "__main__":
    main()
