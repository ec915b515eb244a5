"""Funnel configs scored on the VALIDATION part (for choosing quotas and weights).

    python benchmarks/funnel_valid.py --dataset ml-100k --config configs/ml-100k.toml \\
        --config configs/ml-100k-global.toml

Each funnel is fitted on the protocol's train part (as ``benchmarks/funnel.py`` does) and
evaluated on the validation items, the users' history being the train part; the test part is
never read. Prints one line per config; ``benchmarks/funnel.py`` then gives the test rows.
"""

from __future__ import annotations

import argparse

from harness import load

from funnelrec.config import load_config
from funnelrec.data.splits import Split, split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.pipeline import Funnel


def validation_split(parts: Split) -> Split:
    """``parts`` with the validation part as the test part (and an empty validation part)."""
    empty = parts.train.with_interactions(parts.train.interactions.head(0))
    return Split(protocol=parts.protocol, train=parts.train, valid=empty, test=parts.valid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--protocol", default="loo")
    parser.add_argument("--config", action="append", required=True)
    args = parser.parse_args()
    parts = validation_split(split(load(args.dataset), args.protocol))
    for path in args.config:
        funnel = Funnel(load_config(path)).fit(parts.train)
        report = evaluate_funnel(funnel, parts, ks=(10, 20), consistency_k=None)
        kept = {s.stage: round(s.test_recall, 4) for s in report.stages}
        metrics = {k: round(v, 4) for k, v in report.metrics.items() if "@" in k}
        print(path, "valid", metrics, "kept", kept, flush=True)


if __name__ == "__main__":
    main()
