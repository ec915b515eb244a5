"""ANN indexes (Faiss HNSW, IVF-Flat) against the exact index on clustered synthetic vectors.

    python benchmarks/index.py        # 1M items x 64-d, 1,000 queries, 2 threads (~8 min)

Protocol ``ann``: items are unit vectors drawn around Gaussian cluster centres; queries are
drawn the same way (near a cluster picked in proportion to its size). Ground truth is the
``ExactIndex`` top 100 by inner product. ``recall@100`` = mean |ANN top-100 ∩ exact top-100| /
100; ``qps`` = queries / seconds of one batched ``search`` call (after a warm-up), every index
on the same number of threads (Faiss OpenMP and BLAS); ``speedup`` = qps / exact qps;
``build_s`` = seconds to add all items (k-means training / graph construction included);
``wall_s`` = seconds of the timed search.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from typing import Any

import faiss
import numpy as np
import torch
from harness import cpu_seconds, row, write_rows

from funnelrec.index.base import VectorIndex
from funnelrec.index.factory import make_index
from funnelrec.index.faiss_index import FaissIndex
from funnelrec.ragged import membership

K = 100


def clustered(
    n: int, centres: np.ndarray, weights: np.ndarray, spread: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` unit vectors, each a centre (picked by ``weights``) plus isotropic noise."""
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 250_000):  # bounded temporaries
        m = min(250_000, n - start)
        x = centres[rng.choice(len(centres), m, p=weights)]
        x += rng.standard_normal((m, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def make_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Items ``[n_items, dim]`` and queries ``[n_queries, dim]``; cluster sizes are power-law."""
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.n_clusters, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, args.n_clusters + 1) ** 0.5
    weights /= weights.sum()
    items = clustered(args.n_items, centres, weights, args.spread, rng)
    return items, clustered(args.n_queries, centres, weights, args.spread, rng)


def recall_at_k(got: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each exact top-k row found in the ANN row (``-1`` never matches)."""
    offsets = np.arange(len(got) + 1, dtype=np.int64) * got.shape[1]
    hit = membership(offsets, np.maximum(got, 0).ravel(), offsets, truth.ravel())
    return float((hit & (got.ravel() >= 0)).sum() / truth.size)


def timed_search(
    index: VectorIndex, queries: np.ndarray, repeats: int
) -> tuple[np.ndarray, float, float]:
    """Top-``K`` ids of a batched search, its best seconds over ``repeats`` (after a warm-up)
    and the CPU seconds of that same repeat.

    Best-of-n keeps the number comparable when other processes share the cores.
    """
    index.search(queries[:32], K)
    best, best_cpu = np.inf, 0.0
    for _ in range(repeats):
        start, cpu0 = time.perf_counter(), cpu_seconds()
        ids, _ = index.search(queries, K)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        if seconds < best:
            best, best_cpu = seconds, cpu
    return ids, best, best_cpu


def build(kind: str, items: np.ndarray, **params: Any) -> tuple[VectorIndex, float]:
    start = time.perf_counter()
    index = make_index(kind, items.shape[1], **params)
    index.add(np.arange(len(items), dtype=np.int64), items)
    return index, time.perf_counter() - start


def sweep(
    name: str, index: FaissIndex, knob: str, values: list[int], ctx: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per value of the search-time ``knob`` (``ef_search`` or ``nprobe``)."""
    rows = []
    for value in values:
        setattr(index, knob, value)
        ids, seconds, cpu = timed_search(index, ctx["queries"], ctx["ann_repeats"])
        qps = len(ids) / seconds
        metrics = {"recall@100": recall_at_k(ids, ctx["truth"]), "qps": qps}
        metrics["speedup"] = qps / ctx["exact_qps"]
        model = f"{name}-{'ef' if knob == 'ef_search' else 'nprobe'}{value}"
        extra = {"build_s": round(ctx["build_s"], 2), "params": index.params(), **ctx["extra"]}
        rows.append(row(*ctx["key"], model, "index", metrics, seconds, cpu, **extra))
        print(
            f"{model:28s} recall@100={metrics['recall@100']:.4f} qps={qps:9.0f} "
            f"speedup={metrics['speedup']:6.1f}x build={ctx['build_s']:.1f}s",
            flush=True,
        )
    return rows


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    items, queries = make_data(args)
    exact, build_s = build("exact", items)
    truth, seconds, cpu = timed_search(exact, queries, args.repeats)
    exact_qps = len(queries) / seconds
    key = (f"synthetic-{args.label}-items", "ann")
    extra = {
        "n_items": len(items),
        "dim": args.dim,
        "n_queries": len(queries),
        "threads": args.threads,
    }
    metrics = {"recall@100": 1.0, "qps": exact_qps, "speedup": 1.0}
    rows = [row(*key, "exact", "index", metrics, seconds, cpu, build_s=round(build_s, 2), **extra)]
    print(f"{'exact':28s} qps={exact_qps:.0f} build={build_s:.1f}s", flush=True)
    ctx = {
        "ann_repeats": args.ann_repeats,
        "queries": queries,
        "truth": truth,
        "exact_qps": exact_qps,
        "key": key,
        "extra": extra,
    }
    for m in args.M:
        hnsw, ctx["build_s"] = build("hnsw", items, M=m, ef_construction=args.ef_construction)
        assert isinstance(hnsw, FaissIndex)
        rows += sweep(f"hnsw-M{m}", hnsw, "ef_search", args.ef_search, ctx)
        del hnsw
    if args.nlist:
        ivf, ctx["build_s"] = build("ivf", items, nlist=args.nlist)
        assert isinstance(ivf, FaissIndex)
        rows += sweep(f"ivf-nlist{args.nlist}", ivf, "nprobe", args.nprobe, ctx)
    return conservative_speedups(rows, exact, queries, args.repeats)


def conservative_speedups(
    rows: list[dict[str, Any]], exact: VectorIndex, queries: np.ndarray, repeats: int
) -> list[dict[str, Any]]:
    """Time the exact index again after the ANN runs; speedups use its best QPS of both runs.

    Shared cores make timings drift; taking the exact index's best keeps speedups conservative.
    """
    _, seconds, cpu = timed_search(exact, queries, repeats)
    first = rows[0]["metrics"]["qps"]
    best = max(first, len(queries) / seconds)
    rows[0]["metrics"]["qps"] = round(best, 4)
    if best != first:  # the row's span is now the second run's
        rows[0]["wall_s"] = round(seconds, 3)
        rows[0]["metrics"]["cpu_s"] = round(cpu, 4)
        rows[0]["metrics"]["cpu_per_wall"] = round(cpu / max(seconds, 1e-9), 4)
    for r in rows:
        r["metrics"]["speedup"] = round(r["metrics"]["qps"] / best, 4)
    print(f"exact qps (best of both runs) {best:.0f}: speedups rescaled", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--label", default="1m", help="dataset name: synthetic-<label>-items")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-clusters", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=0.6, help="noise norm around a centre")
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--M", type=int, nargs="+", default=[32])
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[100, 128, 192, 256])
    parser.add_argument("--nlist", type=int, default=1024, help="0 skips IVF")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--repeats", type=int, default=2, help="timed exact searches (best kept)")
    parser.add_argument("--ann-repeats", type=int, default=5, help="timed ANN searches (best kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        limits: Any = threadpool_limits(args.threads)
    except ImportError:
        limits = nullcontext()
    with limits:
        rows = run(args)
    if not args.no_write:
        print(write_rows("index", rows))


if __name__ == "__main__":
    main()
