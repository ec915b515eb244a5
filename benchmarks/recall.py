"""Recall channels as stand-alone recommenders: full-ranking metrics under a protocol.

    python benchmarks/recall.py --dataset ml-100k --protocol loo --model popular
    python benchmarks/recall.py --dataset ml-100k --protocol loo --merged configs/ml-100k.toml

Each channel is fitted on the protocol's train part (RecBole convention) and asked for 200 items per
test user; Recall@K/NDCG@K over the user's test items, train/valid items excluded.
``--merged CONFIG`` evaluates the config's merged recall set (quotas, dedup, fused scores)
as one ranked list, model name ``merged:<config stem>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import cpu_seconds, load, row, write_rows

from funnelrec.config import load_config
from funnelrec.data.splits import split
from funnelrec.eval.protocol import evaluate
from funnelrec.pipeline import Funnel
from funnelrec.registry import RECALL

# Per-dataset params of each channel (defaults when absent). A key may also be a
# (dataset, protocol) pair: its entries override the dataset's for that protocol only.
# itemcf/usercf defaults are tuned for next-item prediction (loo, serving): recent history items
# weigh more. Under rs811 the test items are a random 10% of the user's log, not the next ones,
# so recency weighting only hurts: the whole history counts, equally (chosen on rs811's
# validation part: itemcf NDCG@10 0.128 -> 0.228, usercf 0.183 -> 0.234).
PARAMS: dict[str | tuple[str, str], dict[str, dict[str, object]]] = {
    ("ml-100k", "rs811"): {
        "itemcf": {"history_len": None, "recency_decay": 1.0},
        "usercf": {"recency_decay": 1.0},
    },
}


def run(dataset: str, protocol: str, model: str, config: str | None = None) -> dict[str, object]:
    data = load(dataset)
    parts = split(data, protocol)
    RECALL.names()  # import every channel module before the clock starts
    start, cpu0 = time.perf_counter(), cpu_seconds()
    if config is not None:
        funnel = Funnel(load_config(config)).fit(parts.train)
        recommend = funnel.recall
    else:
        params = {
            **PARAMS.get(dataset, {}).get(model, {}),
            **PARAMS.get((dataset, protocol), {}).get(model, {}),
        }
        channel = RECALL.create(model.split(":")[0], params).fit(parts.train)
        recommend = lambda q: channel.retrieve(q, q.k)  # noqa: E731
    fit_s = time.perf_counter() - start
    result = evaluate(recommend, parts, ks=(10, 20, 200))
    keep = ("recall@10", "recall@20", "recall@200", "ndcg@10", "mrr@10", "hit@10")
    metrics = {k: v for k, v in result.metrics.items() if k in keep}
    metrics["coverage@10"] = result.extra["coverage@10"]
    return row(
        dataset,
        protocol,
        model,
        "recall",
        metrics,
        time.perf_counter() - start,
        cpu_seconds() - cpu0,
        fit_s=round(fit_s, 3),
        n_users=result.n_users,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--model", action="append", help="channel name (repeatable)")
    parser.add_argument(
        "--merged",
        action="append",
        help="funnel config whose merged recall set is evaluated (repeatable)",
    )
    args = parser.parse_args()
    rows = [run(args.dataset, args.protocol, m) for m in (args.model or [])]
    rows += [
        run(args.dataset, args.protocol, f"merged:{Path(c).stem}", c) for c in (args.merged or [])
    ]
    for r in rows:
        print(r["model"], r["metrics"], f"{r['wall_s']} s")
    write_rows("recall", rows)


if __name__ == "__main__":
    main()
