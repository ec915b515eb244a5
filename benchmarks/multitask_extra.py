"""Parts of ``benchmarks/multitask.py``: the controlled-correlation experiment (MMoE paper,
section 4) and the synthetic world's click → like → purchase funnel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness import row

from funnelrec.batch import Batch, FieldSpec, Schema
from funnelrec.data.loaders.multitask import split622
from funnelrec.eval import metrics
from funnelrec.models.multitask import MultiTaskConfig
from funnelrec.rank.fusion import pareto_mask, plot_front, sweep_fusion
from funnelrec.train.multitask import TaskWeighting
from funnelrec.train.rows import TrainSettings, predict


def _last_cpu() -> float:
    """CPU seconds of the last ``multitask.train_eval`` call (its span is the row's wall)."""
    from multitask import CPU_S

    return CPU_S[-1]


CORRELATIONS = (1.0, 0.9, 0.5, 0.0)
CORR_SEEDS = (0, 1, 2)
CORR_SEEDS_MSE = (0, 1)  # the regression runs are ~3x longer (no early stop before 40 epochs)
CORR_MODELS: dict[str, dict[str, Any]] = {
    "sharedbottom": {"arch": "sharedbottom", "bottom": (64,), "tower": (8,)},
    "mmoe": {"arch": "mmoe", "experts": 8, "expert_hidden": (16,), "tower": (8,)},
}
CORR_TRAIN = TrainSettings(epochs=40, batch_size=256, lr=2e-3, patience=4, threads=1)


def correlated_tasks(
    r: float, n: int = 12_000, d: int = 100, seed: int = 0, regression: bool = False
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The MMoE paper's generator: unit ``u1 ⟂ u2``; ``w1 = c·u1``,
    ``w2 = c·(r·u1 + √(1-r²)·u2)``; ``y_i = w_iᵀx + Σ_j sin(α_j w_iᵀx + β_j) + ε``; the
    labels are ``y_i`` above its median (classification version) or, with ``regression``,
    ``y_i`` standardised (the paper's version). Returns ``(x, labels)``."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.normal(size=(d, 2)))[0].T
    c = 1.0
    w1, w2 = c * u[0], c * (r * u[0] + np.sqrt(1 - r * r) * u[1])
    alpha, beta = rng.normal(size=10), rng.normal(size=10)
    x = rng.normal(size=(n, d))
    ys = []
    for w in (w1, w2):
        z = x @ w
        y = z + np.sin(alpha[None, :] * z[:, None] + beta[None, :]).sum(1)
        y = y + rng.normal(scale=0.1, size=n)
        ys.append((y - y.mean()) / y.std() if regression else (y > np.median(y)))
    return x.astype(np.float32), np.stack(ys, axis=1).astype(np.float32)


def correlation(results: Path, regression: bool = False) -> list[dict[str, Any]]:
    """Test loss of both models per correlation (``regression``: squared error)."""
    from multitask import train_eval

    d = 100
    schema = Schema(sparse=(), dense=tuple(FieldSpec(f"x{i}", 1, "x") for i in range(d)))
    loss: dict[str, list[float]] = {m: [] for m in CORR_MODELS}
    rows = []
    for r in CORRELATIONS:
        for name, spec in CORR_MODELS.items():
            losses, aucs, walls, corr, cpus = [], [], [], [], []
            for seed in CORR_SEEDS_MSE if regression else CORR_SEEDS:
                x, y = correlated_tasks(r, seed=seed, regression=regression)
                corr.append(float(np.corrcoef(y.T)[0, 1]))
                parts = {
                    p: Batch.from_numpy(np.zeros((len(i), 0), np.int64), x[i], label=y[i])
                    for p, i in split622(len(x), 2024).items()
                }
                cfg = MultiTaskConfig(n_tasks=2, dim=4, **spec)
                s = TrainSettings(**{**CORR_TRAIN.__dict__, "seed": seed})
                auc, wall, _, model = train_eval(schema, parts, cfg, s, regression=regression)
                out = predict(model, parts["test"]).astype(np.float64)
                yt = y[split622(len(x), 2024)["test"]]
                prob = 1 / (1 + np.exp(-out))
                losses.append(
                    np.mean((out - yt) ** 2) if regression
                    else np.mean([metrics.logloss(yt[:, t], prob[:, t]) for t in range(2)])
                )  # fmt: skip
                aucs.append(np.mean(auc))
                walls.append(wall)
                cpus.append(_last_cpu())
            loss[name].append(float(np.mean(losses)))
            print(r, name, round(float(np.mean(losses)), 4), round(float(np.mean(aucs)), 4))
            key = "mse" if regression else "logloss"
            m = {
                key: np.mean(losses),
                f"{key}_std": np.std(losses, ddof=1),
                "label_corr": np.mean(corr),
                **({} if regression else {"auc": np.mean(aucs)}),
            }
            rows.append(row(f"synthetic-correlation-{r}", "split622",
                            f"{name}-{key}" if regression else name, "rank", m,
                            float(np.sum(walls)), float(np.sum(cpus)),
                            seeds=len(losses)))  # fmt: skip
    suffix = "_mse" if regression else ""
    _plot_loss(loss, results / f"multitask_correlation{suffix}.png", key)
    return rows


def _plot_loss(loss: dict[str, list[float]], path: Path, key: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    for name, values in loss.items():
        ax.plot(CORRELATIONS, values, "o-", label=name)
    ax.set_xlabel("task correlation")
    ax.set_ylabel(f"test {key} (mean of 2 tasks)")
    ax.invert_xaxis()
    ax.legend()
    kind = "regression" if key == "mse" else "classification"
    ax.set_title(f"MMoE paper's synthetic experiment ({kind})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


WORLD_ARCHS = ("single", "sharedbottom", "mmoe", "ple", "esmm")
WORLD_MODEL: dict[str, Any] = {"dim": 8, "bottom": (64, 32), "expert_hidden": (32,),
                               "experts": 4, "tower": (16,), "backbone": "deepfm"}  # fmt: skip
WORLD_TRAIN = TrainSettings(epochs=6, batch_size=2048, lr=3e-3, patience=2, threads=1)
WORLD = {"n_users": 1000, "n_items": 500, "n_interactions": 40_000}
WORLD_NAME = "synthetic-40k"
TASKS = ("click", "like", "purchase")
FRONT_CONSTRAINTS = ((0, 0, 0), (0.8, 0, 0), (0, 0.8, 0), (0, 0, 0.8), (0.4, 0, 0.4))


def world_parts() -> tuple[Schema, dict[str, Batch]]:
    """Impression slates of the default synthetic world as ``[N, 3]``-labelled batches,
    slates split 60/20/20 (seed 2024)."""
    from funnelrec.data.synthetic import generate
    from funnelrec.features import FeatureBuilder, FeatureConfig
    from funnelrec.rank.multitask import task_labels
    from funnelrec.tasks import TaskDef
    from funnelrec.train.examples import impression_examples

    ds = generate(**WORLD)
    ex = impression_examples(ds, None, max_queries=10**9, seed=0)
    labels = task_labels(ds, ex, [TaskDef(name=t, column=t) for t in TASKS])
    builder = FeatureBuilder(FeatureConfig(seq_len=10, popularity=False)).fit(ds)
    full = builder.build(ex.query, ex.candidates)
    full = full.with_labels(torch.from_numpy(labels), torch.from_numpy(ex.candidates.row_ids()))
    rows = ex.candidates.row_ids()
    parts = {}
    for p, q in split622(ex.query.batch_size, 2024).items():
        parts[p] = full.take(np.flatnonzero(np.isin(rows, q)))
    return builder.schema, parts


def world(results: Path) -> list[dict[str, Any]]:
    from multitask import train_eval

    start = time.perf_counter()
    schema, parts = world_parts()
    print(
        f"world built in {time.perf_counter() - start:.0f}s", {p: len(b) for p, b in parts.items()}
    )
    rows = []
    models = {}
    for arch in WORLD_ARCHS:
        cfg = MultiTaskConfig(arch=arch, n_tasks=3, **WORLD_MODEL)  # type: ignore[arg-type]
        auc, wall, best, model = train_eval(schema, parts, cfg, WORLD_TRAIN)
        models[arch] = model
        print(arch, [round(a, 4) for a in auc], f"{wall:.0f}s", flush=True)
        m = {f"auc_{t}": a for t, a in zip(TASKS, auc, strict=True)}
        rows.append(
            row(WORLD_NAME, "split622", arch, "rank", m, wall, _last_cpu(), best_epoch=best)
        )
    rows += esmm_vs_naive(schema, parts)
    rows += pareto(schema, parts, models["mmoe"], results)
    return rows


def _sub(batch: Batch, cols: list[int], rows: np.ndarray[Any, Any] | None = None) -> Batch:
    b = batch if rows is None else batch.take(rows)
    assert b.label is not None
    return b.with_labels(b.label[:, cols], b.group)


def esmm_vs_naive(schema: Schema, parts: dict[str, Batch]) -> list[dict[str, Any]]:
    """ESMM (click → purchase) vs a CVR model trained on clicked impressions only."""
    from multitask import train_eval

    two = {p: _sub(b, [0, 2]) for p, b in parts.items()}
    y = two["test"].label.numpy()  # type: ignore[union-attr]
    clicked = y[:, 0] > 0.5
    cfg = MultiTaskConfig(arch="esmm", n_tasks=2, **{**WORLD_MODEL})  # type: ignore[arg-type]
    _, wall_e, _, esmm = train_eval(schema, two, cfg, WORLD_TRAIN)
    cpu_e = _last_cpu()
    with torch.no_grad():
        esmm.eval()
        cond = esmm.conditional_logits(two["test"]).numpy()
    p_ctr, p_cvr = 1 / (1 + np.exp(-cond[:, 0])), 1 / (1 + np.exp(-cond[:, 1]))
    single = MultiTaskConfig(arch="single", n_tasks=1, **WORLD_MODEL)  # type: ignore[arg-type]
    ctr_parts = {p: _sub(b, [0]) for p, b in parts.items()}
    _, wall_c, _, ctr = train_eval(schema, ctr_parts, single, WORLD_TRAIN)
    cpu_c = _last_cpu()
    cvr_parts = {
        p: _sub(b, [2], np.flatnonzero(b.label.numpy()[:, 0] > 0.5))  # type: ignore[union-attr]
        for p, b in parts.items()
    }
    cvr_parts["test"] = _sub(parts["test"], [2])
    _, wall_n, _, naive = train_eval(schema, cvr_parts, single, WORLD_TRAIN)
    cpu_n = _last_cpu()
    n_ctr = 1 / (1 + np.exp(-predict(ctr, parts["test"])[:, 0]))
    n_cvr = 1 / (1 + np.exp(-predict(naive, parts["test"])[:, 0]))
    out = []
    for name, ctr_p, cvr_p, wall, cpu in (
        ("esmm-cvr", p_ctr, p_cvr, wall_e, cpu_e),
        ("naive-cvr-clicked-only", n_ctr, n_cvr, wall_c + wall_n, cpu_c + cpu_n),
    ):
        m = {
            "cvr_auc_entire": metrics.auc(y[:, 1] > 0.5, cvr_p),
            "cvr_auc_clicked": metrics.auc(y[clicked, 1] > 0.5, cvr_p[clicked]),
            "ctcvr_auc": metrics.auc(y[:, 1] > 0.5, ctr_p * cvr_p),
        }  # fmt: skip
        print(name, {k: round(v, 4) for k, v in m.items()}, flush=True)
        out.append(row(WORLD_NAME, "split622", name, "rank", m, wall, cpu))
    return out


def pareto(
    schema: Schema, parts: dict[str, Batch], mmoe: Any, results: Path
) -> list[dict[str, Any]]:
    """MGDA with PE-LTR lower bounds (front explored by training) and a fusion-weight sweep
    of the MMoE model's task scores (trade-off plot)."""
    from multitask import train_eval

    cfg = MultiTaskConfig(arch="mmoe", n_tasks=3, **WORLD_MODEL)  # type: ignore[arg-type]
    objs, walls, weights, cpus = [], [], [], []
    for c in FRONT_CONSTRAINTS:
        w = TaskWeighting(3, "mgda", min_weights=list(c))
        auc, wall, _, _ = train_eval(schema, parts, cfg, WORLD_TRAIN, w)
        objs.append(auc)
        walls.append(wall)
        cpus.append(_last_cpu())
        weights.append(w.history[-1])
        print("mgda", c, [round(a, 4) for a in auc], [round(x, 3) for x in w.history[-1]])
    obj = np.asarray(objs)
    front = pareto_mask(obj)
    labels = [f"c={list(c)}" for c in FRONT_CONSTRAINTS]
    plot_front(
        obj,
        front,
        [f"test AUC {t}" for t in TASKS],
        results / "multitask_mgda_front.png",
        "MMoE + MGDA, lower bounds on task weights (PE-LTR)",
        labels,
        axes=(0, 2),
    )
    rows = []
    spans = zip(FRONT_CONSTRAINTS, objs, weights, walls, cpus, front, strict=True)
    for c, a, wt, wall, cpu, f in spans:
        m = {
            **{f"auc_{t}": v for t, v in zip(TASKS, a, strict=True)},
            **{f"w_{t}": v for t, v in zip(TASKS, wt, strict=True)},
            "on_front": float(f),
        }
        name = "mmoe-mgda-min" + "-".join(f"{x:g}" for x in c)
        rows.append(row(WORLD_NAME, "split622", name, "rank", m, wall, cpu))
    y = parts["test"].label.numpy()  # type: ignore[union-attr]
    sweep = sweep_fusion(predict(mmoe, parts["test"]), y, TASKS)
    plot_front(sweep.objectives, sweep.front, [f"AUC of fused score vs {t}" for t in TASKS],
               results / "multitask_fusion_sweep.png", "MMoE fusion weights (weighted sum)",
               axes=(0, 2))  # fmt: skip
    print("fusion sweep:", int(sweep.front.sum()), "of", len(sweep.front), "on the front")
    return rows
