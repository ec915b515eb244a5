"""Re-rank benchmark: NDCG@10 vs intra-list diversity for none / MMR / DPP / PRM, and latency.

The funnel of ``--config`` (which holds a ``prm`` re-ranker) is fitted once on the ``loo``
train part, PRM on the funnel's own lists for the validation users (labels = validation
items). For every test user the list PRM receives (recall → pre-rank → rank → the re-rankers
before it) is computed once; each variant then re-ranks that same list to 10 items: ``none``
(the ranker's order), ``mmr`` (Jaccard) / ``dpp`` (cosine) over tag sets (genres, Beauty
attributes) across
their trade-off parameter, ``prm``. Metrics: NDCG@10 (full ranking truth), ``ild`` (share of
item pairs of different category), ``categories@10`` (distinct categories per list). The
MMR and DPP curves go to ``benchmarks/results/rerank_tradeoff_<dataset>.png``.

    python benchmarks/rerank.py --dataset ml-100k --config configs/ml-100k-rerank.toml
    python benchmarks/rerank.py --dataset amazon-beauty-seq \
        --config configs/amazon-beauty-rerank.toml
    python benchmarks/rerank.py --latency
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from harness import RESULTS, load, row, write_rows

from funnelrec.config import load_config
from funnelrec.data.splits import split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import batches
from funnelrec.pipeline import Funnel
from funnelrec.registry import RERANK
from funnelrec.types import Candidates, Query

MMR_GRID = (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
DPP_GRID = (1.0, 0.99, 0.98, 0.96, 0.94, 0.92, 0.9, 0.85, 0.8, 0.7, 0.5, 0.0)
MAIN = {"mmr": 0.7, "dpp": 0.9}  # parameter of the headline rows


def quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    start = time.perf_counter()
    parts = split(load(args.dataset), "loo")
    funnel = Funnel(load_config(args.config)).fit(parts.train, valid=parts.valid)
    fit_s = time.perf_counter() - start
    names = [r.registered_name for r in funnel.rerankers]
    at = names.index("prm")
    lists_fn = funnel._context(at, None).lists
    assert lists_fn is not None
    users = parts.test_users()
    users = users[np.diff(parts.history.user_item.indptr)[users] > 0]
    queries, lists = [], []
    for chunk in batches(users, 1024):
        query = parts.test_query(chunk, 10)
        queries.append(query)
        lists.append(lists_fn(query))
    t_off, t_items = parts.truth(parts.test, users)
    cats = parts.train.item_categories[0]

    def measure(apply: Any) -> tuple[dict[str, float], float]:
        t0 = time.perf_counter()
        top = np.concatenate([apply(q, c).dense(10) for q, c in zip(queries, lists, strict=True)])
        wall = time.perf_counter() - t0
        m = metrics.ranking_metrics(top, t_off, t_items, ks=(10,))
        distinct = [len(set(cats[r[r >= 0]].tolist())) for r in top]
        return {
            "ndcg@10": m["ndcg@10"],
            "recall@10": m["recall@10"],
            "ild": metrics.intra_list_diversity(top, cats),
            "categories@10": float(np.mean(distinct)),
        }, wall

    def truncated(q: Query, c: Candidates) -> Candidates:
        return c.truncate(10)

    curves: dict[str, list[dict[str, float]]] = {"mmr": [], "dpp": []}
    rows = []
    base, wall = measure(truncated)
    rows.append(row(args.dataset, "loo", "none", "rerank", base, wall, lists=len(users)))
    prm = funnel.rerankers[at]
    got, wall = measure(lambda q, c: prm.rerank(q, c, 10))
    got["ndcg_gain_vs_none"] = got["ndcg@10"] / base["ndcg@10"] - 1.0
    rows.append(row(args.dataset, "loo", "prm", "rerank", got, wall, fit_s=round(fit_s, 1)))
    for name, grid, key in (("mmr", MMR_GRID, "lam"), ("dpp", DPP_GRID, "theta")):
        for value in grid:
            params = {key: value, **({"similarity": "jaccard"} if name == "mmr" else {})}
            stage = RERANK.create(name, params).fit(parts.train)
            got, wall = measure(lambda q, c, s=stage: s.rerank(q, c, 10))
            curves[name].append({key: value, **got})
            if value == MAIN[name]:
                rows.append(row(args.dataset, "loo", name, "rerank", got, wall, **{key: value}))
    gap = _dpp_vs_mmr(curves)
    for r in rows:
        if r["model"] in ("mmr", "dpp"):
            r["curve"] = curves[r["model"]]
        if r["model"] == "dpp":
            r["metrics"]["ild_gain_vs_mmr"] = round(gap, 4)
    _plot(args.dataset, curves, base, rows)
    return rows


def _dpp_vs_mmr(curves: dict[str, list[dict[str, float]]]) -> float:
    """Mean ILD of DPP minus MMR's ILD at the same NDCG@10 (MMR curve interpolated), over the
    DPP points inside MMR's NDCG range."""
    mmr = sorted(curves["mmr"], key=lambda p: p["ndcg@10"])
    x = np.asarray([p["ndcg@10"] for p in mmr])
    y = np.asarray([p["ild"] for p in mmr])
    gaps = [
        p["ild"] - float(np.interp(p["ndcg@10"], x, y))
        for p in curves["dpp"]
        if x.min() <= p["ndcg@10"] <= x.max()
    ]
    return float(np.mean(gaps)) if gaps else float("nan")


def _plot(
    dataset: str,
    curves: dict[str, list[dict[str, float]]],
    base: dict[str, float],
    rows: list[dict[str, Any]],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, div in zip(axes, ("ild", "categories@10"), strict=True):
        for name, marker in (("mmr", "o"), ("dpp", "s")):
            pts = curves[name]
            ax.plot([p[div] for p in pts], [p["ndcg@10"] for p in pts], marker=marker, label=name)
        ax.scatter([base[div]], [base["ndcg@10"]], color="k", zorder=5, label="none (ranker)")
        prm = next(r for r in rows if r["model"] == "prm")["metrics"]
        ax.scatter(
            [prm[div]], [prm["ndcg@10"]], color="r", marker="*", s=120, zorder=5, label="prm"
        )
        ax.set_xlabel(div)
        ax.set_ylabel("NDCG@10")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{dataset} (loo): accuracy vs diversity, MMR λ and DPP θ swept")
    fig.tight_layout()
    fig.savefig(RESULTS / f"rerank_tradeoff_{dataset}.png", dpi=110)


def latency() -> list[dict[str, Any]]:
    """p50/p99 of re-ranking one 100-item list to 10 (rules chain and each rule, MMR, DPP,
    near-dedup) on a 5,000-item synthetic catalogue."""
    from funnelrec.data.synthetic import generate

    world = generate(n_users=2000, n_items=5000, n_interactions=100_000, seed=0)
    rng = np.random.default_rng(0)
    query = world.query(np.asarray([0]), 10)
    items = rng.permutation(world.n_items)[:100][None, :].astype(np.int64)
    cands = Candidates.from_dense(items, np.sort(rng.random((1, 100)))[:, ::-1].copy(), "t")
    rules = [
        RERANK.create("seen_filter", {}).fit(world),
        RERANK.create("dedup", {}).fit(world),
        RERANK.create("scatter", {"window": 5, "max_per_window": 2}).fit(world),
        RERANK.create(
            "slots", {"rules": [{"kind": "category", "positions": [3], "category": "Books"}]}
        ).fit(world),
    ]
    chains = {
        "rules-100": rules,  # as in a funnel: every rule but the last keeps all 100 items
        **{f"{r.registered_name}-100": [r] for r in rules},  # each rule alone, 100 → 10
        "mmr-100": [RERANK.create("mmr", {"lam": 0.7}).fit(world)],
        "dpp-100": [RERANK.create("dpp", {"theta": 0.9}).fit(world)],
        "near_dedup-100": [RERANK.create("near_dedup", {"features": "tags"}).fit(world)],
    }
    out = []
    for name, chain in chains.items():
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            c = cands
            for i, r in enumerate(chain):
                c = r.rerank(query, c, 10 if i == len(chain) - 1 else 100)
            times.append((time.perf_counter() - t0) * 1000)
        t = np.asarray(times[20:])
        m = {"p50_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99))}
        out.append(row("synthetic-100k", "loo", f"{name}-latency", "rerank", m, t.sum() / 1000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--config", default="configs/ml-100k-rerank.toml")
    parser.add_argument("--latency", action="store_true")
    args = parser.parse_args()
    rows = latency() if args.latency else quality(args)
    for r in rows:
        print(r["model"], r["metrics"])
    print(write_rows("rerank", rows))


if __name__ == "__main__":
    main()
