"""Multi-objective fusion: per-task scores → one ranking score, and Pareto tools.

* ``fuse``: ``sum`` = ``Σ_t w_t σ(l_t)`` (weighted sum of task probabilities) or
  ``product`` = ``Π_t σ(l_t)^{w_t}`` (product of powers, computed as
  ``Σ_t w_t log σ(l_t)``, which ranks identically).
* ``pareto_mask``: the non-dominated points of a set of objective vectors (higher is better).
* ``sweep_fusion``: scores a grid of fusion weights by every objective (AUC, or GAUC over
  queries, of the fused score against each task's labels) and marks the trade-off front;
  ``plot_front`` saves the trade-off as a PNG (matplotlib, no display needed).

The objective weights used while *training* (fixed, uncertainty, MGDA / PE-LTR) live in
``funnelrec.train.multitask``; ``explore_front`` here trains one model per weight
constraint and returns the validation front it explored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from funnelrec.eval import metrics
from funnelrec.ragged import IntArray

FusionKind = Literal["sum", "product"]
BoolArray = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]


def fuse(logits: npt.ArrayLike, weights: Sequence[float], kind: FusionKind = "sum") -> F64:
    """``[N]`` fused score of task logits ``[N, T]`` with weights ``[T]``."""
    x = np.asarray(logits, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(w):
        raise ValueError(f"{len(w)} fusion weights for task scores of shape {x.shape}")
    if (w < 0).any():
        raise ValueError(f"fusion weights must be >= 0, got {w.tolist()}")
    if kind == "sum":
        return np.asarray((w / (1.0 + np.exp(-x))).sum(1), dtype=np.float64)
    if kind == "product":
        log_sig = -np.logaddexp(0.0, -x)
        return np.asarray((w * log_sig).sum(1), dtype=np.float64)
    raise ValueError(f"unknown fusion {kind!r}; known: sum, product")


def pareto_mask(points: npt.ArrayLike) -> BoolArray:
    """``[M]`` True for points ``[M, K]`` that no other point dominates (all ``>=``, one ``>``)."""
    p = np.asarray(points, dtype=np.float64)
    ge = (p[:, None, :] >= p[None, :, :]).all(-1)
    gt = (p[:, None, :] > p[None, :, :]).any(-1)
    dominated = (ge & gt).any(0)  # dominated[j]: some i has p_i >= p_j everywhere, > somewhere
    return np.asarray(~dominated)


def simplex_grid(n_tasks: int, steps: int) -> F64:
    """All weight vectors ``[M, T]`` with entries in ``{0, 1/steps, ..., 1}`` summing to 1."""
    rows = [c for c in itertools.product(range(steps + 1), repeat=n_tasks) if sum(c) == steps]
    return np.asarray(rows, dtype=np.float64) / steps


@dataclass(frozen=True)
class Sweep:
    """``weights [M, T]`` tried, ``objectives [M, T]`` (metric of the fused score per task),
    ``front [M]`` non-dominated mask, task ``names``."""

    weights: F64
    objectives: F64
    front: BoolArray
    names: tuple[str, ...]
    kind: FusionKind


def sweep_fusion(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    names: Sequence[str],
    grid: npt.ArrayLike | None = None,
    kind: FusionKind = "sum",
    groups: IntArray | None = None,
) -> Sweep:
    """Score every fusion weight vector of ``grid`` (default: ``simplex_grid(T, 10)``) by the
    AUC (GAUC over ``groups`` when given) of the fused score against each task's labels."""
    x, y = np.asarray(logits), np.asarray(labels) > 0.5
    if y.shape != x.shape or len(names) != x.shape[1]:
        raise ValueError(f"logits {x.shape}, labels {y.shape} and {len(names)} task names")
    w = simplex_grid(x.shape[1], 10) if grid is None else np.asarray(grid, dtype=np.float64)
    obj = np.zeros((len(w), x.shape[1]))
    for i, weights in enumerate(w):
        score = fuse(x, weights, kind)
        for t in range(x.shape[1]):
            obj[i, t] = (
                metrics.auc(y[:, t], score) if groups is None
                else metrics.gauc(y[:, t], score, groups)
            )  # fmt: skip
    return Sweep(w, obj, pareto_mask(obj), tuple(names), kind)


def plot_front(
    objectives: npt.ArrayLike,
    front: npt.ArrayLike,
    names: Sequence[str],
    path: str | Path,
    title: str = "",
    labels: Sequence[str] | None = None,
    axes: tuple[int, int] = (0, 1),
) -> Path:
    """Scatter of objective ``axes``; the points of ``front`` that are also non-dominated in
    that plane are joined (the front), the other ``front`` points drawn hollow; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    obj, mask = np.asarray(objectives, dtype=np.float64), np.asarray(front, dtype=np.bool_)
    a, b = axes
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    flat = mask & pareto_mask(obj[:, [a, b]])  # also non-dominated in the plotted plane
    ax.scatter(obj[~mask, a], obj[~mask, b], c="0.6", s=18, label="dominated")
    rest = mask & ~flat
    if rest.any():
        ax.scatter(obj[rest, a], obj[rest, b], facecolors="none", edgecolors="C3", s=30,
                   label="non-dominated on other objectives")  # fmt: skip
    order = np.argsort(obj[flat, a])
    ax.plot(obj[flat, a][order], obj[flat, b][order], "o-", c="C3", ms=5, label="Pareto front")
    if labels is not None:
        for i in np.flatnonzero(mask):
            ax.annotate(labels[int(i)], (obj[i, a], obj[i, b]), fontsize=6, alpha=0.8)
    ax.set_xlabel(names[a])
    ax.set_ylabel(names[b])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


@dataclass(frozen=True)
class Front:
    """Runs of ``explore_front``: ``constraints [R, T]`` (lower bounds on the MGDA weights),
    ``objectives [R, T]`` (validation metric per task), ``weights [R, T]`` (final mean
    training weights) and the non-dominated mask ``front [R]``."""

    constraints: F64
    objectives: F64
    weights: F64
    front: BoolArray


def explore_front(
    train: Callable[[Sequence[float]], tuple[Sequence[float], Sequence[float]]],
    constraints: npt.ArrayLike,
) -> Front:
    """Train once per lower-bound vector (PE-LTR style); ``train(min_weights)`` returns
    ``(validation metric per task, final training weights)``."""
    c = np.asarray(constraints, dtype=np.float64)
    runs = [train(list(row)) for row in c]
    obj = np.asarray([r[0] for r in runs], dtype=np.float64)
    weights = np.asarray([r[1] for r in runs], dtype=np.float64)
    return Front(c, obj, weights, pareto_mask(obj))
