"""Whole-funnel evaluation (stage-by-stage survival + final slate) under a protocol.

python benchmarks/funnel.py --dataset ml-100k --protocol loo --config configs/ml-100k.toml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import ROOT, load, row, write_rows

from funnelrec.config import load_config
from funnelrec.data.splits import split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--config", default=str(ROOT / "configs" / "ml-100k.toml"))
    parser.add_argument("--name", default=None, help="model name in the result row")
    args = parser.parse_args()
    parts = split(load(args.dataset), args.protocol)
    start = time.perf_counter()
    funnel = Funnel(load_config(args.config)).fit(parts.train, valid=parts.valid)
    fit_s = time.perf_counter() - start
    report = evaluate_funnel(funnel, parts, ks=(10, 20))
    metrics = dict(report.metrics)
    for stage in report.stages:
        metrics[f"kept_{stage.stage.replace(':', '_')}"] = stage.test_recall
    name = args.name or Path(args.config).stem
    r = row(
        args.dataset,
        args.protocol,
        name,
        "funnel",
        metrics,
        time.perf_counter() - start,
        fit_s=round(fit_s, 3),
        eval_s=round(report.wall_s, 3),
        n_users=report.n_users,
    )
    print(r)
    write_rows("funnel", [r])


if __name__ == "__main__":
    main()
