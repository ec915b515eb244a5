"""Whole-funnel evaluation (stage-by-stage survival + final slate) under a protocol.

python benchmarks/funnel.py --dataset ml-100k --protocol loo --config configs/ml-100k.toml

Besides the end-to-end metrics the row records NDCG@10 after each stage (``ndcg@10:recall``
is the merged recall order, then ``:prerank``, ``:rank``, ``:final``), every recall channel
alone (``channel_ndcg@10``), the best of them, and the funnel's lift over it with a paired
bootstrap 95% interval over test users (``lift``). ``internal_valid`` is the funnel's
NDCG@10 on the validation part (history = training part), the figure every choice in the
config was made on; ``--stacking`` overrides the config's ``[fit] stacking``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import ROOT, cpu_seconds, load, row, write_rows

from funnelrec.config import load_config
from funnelrec.data.splits import split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.eval.lift import bootstrap_lift, channel_ndcg, stage_ndcg
from funnelrec.pipeline import Funnel

RULE = "config choices made on the validation part (internal_valid); test read once"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", "--data", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--config", default=str(ROOT / "configs" / "ml-100k.toml"))
    parser.add_argument("--name", default=None, help="model name in the result row")
    parser.add_argument("--stacking", choices=["oof", "in-sample"], default=None)
    parser.add_argument("--no-lift", action="store_true", help="skip channels-alone and lift")
    args = parser.parse_args()
    config = load_config(args.config)
    if args.stacking is not None:
        config = config.model_copy(
            update={"fit": config.fit.model_copy(update={"stacking": args.stacking})}
        )
    parts = split(load(args.dataset), args.protocol)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    funnel = Funnel(config).fit(parts.train, valid=parts.valid)
    fit_s = time.perf_counter() - start
    report = evaluate_funnel(funnel, parts, ks=(10, 20))
    metrics = dict(report.metrics)
    for stage in report.stages:
        metrics[f"kept_{stage.stage.replace(':', '_')}"] = stage.test_recall
    extra: dict[str, Any] = {}
    if not args.no_lift:
        extra = lift_fields(funnel, parts)
        metrics.update({f"ndcg@10:{s}": v for s, v in extra.pop("stage_ndcg").items()})
    name = args.name or Path(args.config).stem
    r = row(
        args.dataset, args.protocol, name, "funnel", metrics, time.perf_counter() - start,
        cpu_seconds() - cpu0,
        fit_s=round(fit_s, 3), eval_s=round(report.wall_s, 3), n_users=report.n_users,
        stacking=config.fit.stacking, rule=RULE, fit_log=_fit_log(funnel), **extra,
    )  # fmt: skip
    print(json.dumps(r, indent=1))
    write_rows("funnel", [r])


def lift_fields(funnel: Funnel, parts: Any) -> dict[str, Any]:
    """Stage NDCGs, channels alone, the lift over the best channel, internal validation."""
    stages = stage_ndcg(funnel, parts)
    channels = channel_ndcg(funnel, parts)
    means = {c: float(np.nanmean(v)) for c, v in channels.items()}
    best = max(means, key=lambda c: means[c])
    lift = bootstrap_lift(stages["final"], channels[best])
    valid_stages = stage_ndcg(funnel, parts, part="valid")
    valid_channels = channel_ndcg(funnel, parts, part="valid")
    return {
        "stage_ndcg": {s: float(np.nanmean(v)) for s, v in stages.items()},
        "channel_ndcg@10": {c: round(v, 4) for c, v in means.items()},
        "best_channel": best,
        "lift": {k: round(v, 4) for k, v in lift.as_dict().items()},
        "internal_valid": {
            "ndcg@10": round(float(np.nanmean(valid_stages["final"])), 4),
            **{f"ndcg@10:{s}": round(float(np.nanmean(v)), 4) for s, v in valid_stages.items()},
            "channel_ndcg@10": {
                c: round(float(np.nanmean(v)), 4) for c, v in valid_channels.items()
            },
        },
    }


def _fit_log(funnel: Funnel) -> dict[str, Any]:
    """The funnel's stacking log, the ranker's (best iteration, top importances) and the
    pre-ranker's."""
    out: dict[str, Any] = dict(getattr(funnel, "fit_log_", {}))
    ranker_log = dict(getattr(funnel.ranker, "fit_log_", {}))
    if "importance" in ranker_log:
        imp = ranker_log.pop("importance")
        ranker_log["importance_top"] = dict(sorted(imp.items(), key=lambda kv: -kv[1])[:12])
    out["ranker"] = ranker_log
    prerank_log = getattr(funnel.preranker, "fit_log_", None)
    if prerank_log:
        out["prerank"] = {k: v for k, v in prerank_log.items() if k != "importance"}
    return out


if __name__ == "__main__":
    main()
