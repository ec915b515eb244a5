"""Multi-task ranking benchmarks (stage "rank"): census-income, the MMoE paper's controlled
correlation experiment, and the synthetic world's click → like → purchase funnel.

python benchmarks/multitask.py --census        # split622 (seed 2024), 5 seeds per model
python benchmarks/multitask.py --correlation   # synthetic-correlation-<r>, plot loss vs r
python benchmarks/multitask.py --world         # per-task AUC, ESMM vs clicked-only CVR, Pareto
python benchmarks/multitask.py --funnel        # what earlier stages dropped of the ranker's top 50

census-income: the 99,762-row file cut 60/20/20 (seed 2024); tasks income > 50K and never
married; every model early-stops on the mean validation AUC; test AUC per task, mean and
standard deviation over seeds 0-4. `wall_s` is the total training time of the 5 seeds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from harness import RESULTS, cpu_seconds, data_path, row, write_rows

from funnelrec.batch import Batch, Schema
from funnelrec.data.loaders.multitask import load_census_income
from funnelrec.models.multitask import MultiTaskConfig, build_multitask
from funnelrec.train.loop import seeded
from funnelrec.train.multitask import TaskWeighting, task_aucs, train_multitask
from funnelrec.train.rows import TrainSettings, predict

SEEDS = (0, 1, 2, 3, 4)
CPU_S: list[float] = []  # CPU seconds of every train_eval call (the machine is shared)
CENSUS_ARCHS = ("single", "sharedbottom", "mmoe", "ple")
# chosen on the validation part (seed 0): numerics also as categorical fields, lr 2e-3
CENSUS_MODEL: dict[str, Any] = {"dim": 8, "bottom": (128, 64), "expert_hidden": (64,),
                                "experts": 4, "tower": (32,)}  # fmt: skip
CENSUS_TRAIN = TrainSettings(epochs=30, batch_size=1024, lr=2e-3, patience=3, threads=1)


def train_eval(
    schema: Schema,
    parts: dict[str, Batch],
    cfg: MultiTaskConfig,
    s: TrainSettings,
    weighting: TaskWeighting | None = None,
    regression: bool = False,
) -> tuple[list[float], float, int, Any]:
    """Train on ``train`` (early stop on ``valid``); ``(test AUC per task, seconds, best
    epoch, model)``."""
    start, cpu = time.perf_counter(), time.process_time()
    with seeded(s.seed):
        model = build_multitask(schema, cfg)
    w = weighting or TaskWeighting(cfg.n_tasks)
    result = train_multitask(model, parts["train"], parts["valid"], s, w, regression=regression)
    wall = time.perf_counter() - start
    CPU_S.append(time.process_time() - cpu)
    y = parts["test"].label
    assert y is not None
    return task_aucs(y.numpy(), predict(model, parts["test"])), wall, result.fit.best_epoch, model


def census(archs: tuple[str, ...]) -> list[dict[str, Any]]:
    table = load_census_income(data_path("census-income"), seed=2024)
    schema, parts = table.encode()
    names = table.task_names
    rows = []
    for arch in archs:
        cfg = MultiTaskConfig(arch=arch, n_tasks=len(names), **CENSUS_MODEL)  # type: ignore[arg-type]
        aucs, walls, epochs, cpus = [], [], [], []
        for seed in SEEDS:
            s = TrainSettings(**{**CENSUS_TRAIN.__dict__, "seed": seed})
            auc, wall, best, _ = train_eval(schema, parts, cfg, s)
            aucs.append(auc)
            walls.append(wall)
            epochs.append(best)
            cpus.append(CPU_S[-1])
            print(arch, seed, [round(a, 4) for a in auc], f"{wall:.1f}s", best, flush=True)
        a = np.asarray(aucs)
        metrics = {}
        for t, name in enumerate(names):
            metrics[f"auc_{name}"] = a[:, t].mean()
            metrics[f"auc_{name}_std"] = a[:, t].std(ddof=1)
        metrics["wall_s_per_seed"] = float(np.mean(walls))
        metrics["cpu_s_per_seed"] = float(np.mean(cpus))
        metrics["best_epoch_mean"] = float(np.mean(epochs))
        rows.append(row("census-income", "split622", arch, "rank", metrics, float(np.sum(walls)),
                        float(np.sum(cpus)),
                        seeds=len(SEEDS), epochs="/".join(map(str, epochs))))  # fmt: skip
    return rows


def funnel_consistency() -> list[dict[str, Any]]:
    """The synthetic-multitask funnel (tasks shared by recall, pre-rank and rank) vs the same
    funnel whose pre-ranker optimises clicks only: how many of the ranker's top 50 each
    earlier stage dropped."""
    from harness import ROOT, load

    from funnelrec.config import load_config, parse_config
    from funnelrec.data.splits import split
    from funnelrec.eval.funnel import evaluate_funnel
    from funnelrec.pipeline import Funnel

    parts = split(load("synthetic-40k"), "loo")
    base = load_config(ROOT / "configs" / "synthetic-multitask.toml")
    click_only = base.to_dict()
    click_only["prerank"]["params"]["tasks"] = [base.to_dict()["tasks"][0]]
    rows = []
    for name, config in (("multitask-shared-tasks", base),
                         ("multitask-prerank-click-only", parse_config(click_only))):  # fmt: skip
        start, cpu0 = time.perf_counter(), cpu_seconds()
        funnel = Funnel(config).fit(parts.train)
        report = evaluate_funnel(funnel, parts, ks=(10,), consistency_k=50,
                                 catalogue_consistency=True)  # fmt: skip
        m = dict(report.metrics)
        m.update({f"kept_{s.stage.replace(':', '_')}": s.test_recall for s in report.stages})
        print(name, {k: round(v, 4) for k, v in m.items()}, flush=True)
        rows.append(row("synthetic-40k", "loo", name, "funnel", m, time.perf_counter() - start,
                        cpu_seconds() - cpu0))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--census", action="store_true")
    ap.add_argument("--archs", default=",".join(CENSUS_ARCHS))
    ap.add_argument("--correlation", action="store_true")
    ap.add_argument("--regression", action="store_true", help="correlation: squared error")
    ap.add_argument("--world", action="store_true")
    ap.add_argument("--funnel", action="store_true")
    args = ap.parse_args()
    if args.census:
        write_rows("multitask", census(tuple(args.archs.split(","))))
    if args.correlation:
        from multitask_extra import correlation

        write_rows("multitask", correlation(RESULTS, args.regression))
    if args.world:
        from multitask_extra import world

        write_rows("multitask", world(RESULTS))
    if args.funnel:
        write_rows("multitask", funnel_consistency())


if __name__ == "__main__":
    main()
