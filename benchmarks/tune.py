"""``init`` + ``tune`` on a dataset, both configs evaluated on the test part (``loo``).

    python benchmarks/tune.py --dataset ml-100k --trials 30 --budget 30m
    python benchmarks/tune.py --data path/to/my/log.txt --trials 10 --budget 10m

The config written by ``funnelrec init`` (from the data profile alone) is tuned by Optuna on
the validation part (history = train; the test part is removed from the data tuning sees);
then the starting (``init``) and the tuned config are each fitted on the train part and
evaluated on the test part. ``internal_valid`` is the validation NDCG@10 that chose them.
Writes the tuned config, its search history and plot under ``benchmarks/results/tune/``.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from harness import RESULTS, add_data_args, cpu_seconds, dataset_name, load, row, write_rows

from funnelrec.config import parse_config
from funnelrec.data.splits import split
from funnelrec.eval.funnel import evaluate_funnel
from funnelrec.init_config import propose, render
from funnelrec.pipeline import Funnel
from funnelrec.profile import profile
from funnelrec.stacking import FitMemo
from funnelrec.tune import parse_budget, tune, without_test, write_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_args(parser)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--valid-users", type=int, default=3000)
    args = parser.parse_args()
    name = dataset_name(args)
    data = load(args.data or args.dataset)
    out_dir = RESULTS / "tune"
    out_dir.mkdir(parents=True, exist_ok=True)
    init_text = render(propose(profile(data)))
    (out_dir / f"{name}.init.toml").write_text(init_text)
    raw = tomllib.loads(init_text)
    parts = split(data, "loo")
    memo = FitMemo()  # channels and lists fitted by the search, reused by the final fits
    start = time.perf_counter()
    result = tune(
        raw, data, trials=args.trials, budget_s=parse_budget(args.budget),
        valid_users=args.valid_users, inner=without_test(parts), memo=memo,
        progress=lambda msg: print(msg, flush=True),
    )  # fmt: skip
    tune_s = time.perf_counter() - start
    write_outputs(result, out_dir / f"{name}.tuned.toml", name)
    rows = []
    for model, cfg, valid in (
        ("init", raw, result.init_value),
        ("tuned", result.config, result.best_value),
    ):
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        funnel = Funnel(parse_config(cfg, model), memo=memo)
        funnel.fit(parts.train, valid=parts.valid)
        report = evaluate_funnel(funnel, parts, ks=(10, 20), consistency_k=None)
        metrics = {**report.metrics, "internal_valid": valid, "trials": result.n_trials}
        r = row(
            name, "loo", model, "funnel", metrics, time.perf_counter() - t0, cpu_seconds() - cpu0,
            internal_valid=round(valid, 4), rule="max valid ndcg@10 (optuna TPE, median pruning)",
            trials=result.n_trials, tune_s=round(tune_s, 1), n_users=report.n_users,
            config=str(Path("benchmarks/results/tune") / f"{name}.{model}.toml"),
        )  # fmt: skip
        print(r, flush=True)
        rows.append(r)
    write_rows("tune", rows)


if __name__ == "__main__":
    main()
