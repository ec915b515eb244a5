"""Multi-task training through the one loop: per-task BCE and the objective weighting.

Labels are ``[N, T]`` (NaN = unknown, left out of that task's loss). The per-task losses
``L_t`` are combined by a ``TaskWeighting``:

* ``fixed``: ``Σ_t w_t L_t`` with given weights;
* ``uncertainty``: ``Σ_t exp(-s_t) L_t + s_t`` with learned log-variances ``s_t`` (Kendall,
  Gal & Cipolla 2018);
* ``mgda``: the multiple-gradient-descent step (Sener & Koltun 2018): the weights are the
  min-norm point of the convex hull of the tasks' (normalised) gradients on the shared
  parameters, which is a common descent direction — a Pareto-stationary point has weight
  vector with zero-norm combination. With ``min_weights`` ``c_t`` the weights are kept
  ``w_t ≥ c_t`` (the PE-LTR constraint): different ``c`` reach different Pareto-optimal
  points, which is how a front is explored (``explore_front`` in ``rank/fusion.py``).

The weights used per step are recorded (``TaskWeighting.history``: mean per epoch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.batch import Batch
from funnelrec.eval import metrics
from funnelrec.ragged import FloatArray
from funnelrec.train.loop import FitResult, fit, resolve_device
from funnelrec.train.rows import RowBatches, TrainSettings, predict

Weighting = Literal["fixed", "uncertainty", "mgda"]


def task_losses(logits: Tensor, labels: Tensor, regression: bool = False) -> Tensor:
    """``[T]`` mean BCE (``regression``: squared error) per task of outputs/labels ``[N, T]``
    (NaN labels skipped)."""
    known = ~torch.isnan(labels)
    target = torch.nan_to_num(labels)
    raw = (
        (logits - target).pow(2)
        if regression
        else F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    )
    return (raw * known).sum(0) / known.sum(0).clamp_min(1)


def min_norm_weights(grads: Tensor, min_weights: Tensor | None = None, iters: int = 50) -> Tensor:
    """Weights ``w`` on the simplex (``w ≥ min_weights``) minimising ``‖Σ w_t g_t‖²``.

    Frank-Wolfe on the Gram matrix of ``grads`` ``[T, P]`` with exact line search.
    """
    t = grads.shape[0]
    gram = (grads @ grads.T).double()
    low = torch.zeros(t, dtype=torch.float64) if min_weights is None else min_weights.double()
    free = 1.0 - float(low.sum())
    if free < -1e-9:
        raise ValueError(f"min_weights sum to {1 - free:.3f} > 1")
    v = torch.full((t,), 1.0 / t, dtype=torch.float64)
    for _ in range(iters):
        w = low + free * v
        grad = gram @ w
        s = torch.zeros(t, dtype=torch.float64)
        s[int(torch.argmin(grad))] = 1.0
        d = free * (s - v)
        denom = float(d @ gram @ d)
        if denom <= 1e-20:
            break
        gamma = min(max(-float(d @ gram @ w) / denom, 0.0), 1.0)
        if gamma <= 1e-9:
            break
        v = v + gamma * (s - v)
    return (low + free * v).float()


class TaskWeighting(nn.Module):
    """Combines per-task losses ``[T]`` into one scalar (see module doc)."""

    def __init__(
        self,
        n_tasks: int,
        kind: Weighting = "fixed",
        weights: Sequence[float] | None = None,
        min_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if weights is not None and len(weights) != n_tasks:
            raise ValueError(f"{len(weights)} task weights for {n_tasks} tasks")
        self.kind, self.n_tasks = kind, n_tasks
        self.fixed = torch.tensor(weights if weights is not None else [1.0] * n_tasks)
        self.min_weights = None if min_weights is None else torch.tensor(min_weights)
        self.log_var = nn.Parameter(torch.zeros(n_tasks)) if kind == "uncertainty" else None
        self.history: list[list[float]] = []
        self._epoch: list[Tensor] = []

    def current(self) -> Tensor:
        """The effective per-task weights now (uncertainty: ``exp(-s_t)``)."""
        if self.log_var is not None:
            return torch.exp(-self.log_var.detach())
        return self.fixed

    def combine(self, losses: Tensor, shared: Sequence[nn.Parameter]) -> Tensor:
        """Scalar training loss of ``losses`` ``[T]`` (``shared``: MGDA's parameters)."""
        if self.kind == "uncertainty":
            assert self.log_var is not None
            w = torch.exp(-self.log_var)
            self._epoch.append(w.detach().cpu())
            return (w * losses + self.log_var).sum()
        if self.kind == "mgda" and self.n_tasks > 1 and shared:
            w = self._mgda(losses, shared).to(losses.device)
        else:
            w = self.fixed.to(losses.device)
        self._epoch.append(w.detach().cpu())
        return (w * losses).sum()

    def _mgda(self, losses: Tensor, shared: Sequence[nn.Parameter]) -> Tensor:
        rows = []
        for t in range(self.n_tasks):
            g = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
            flat = torch.cat([x.flatten() for x in g if x is not None])
            rows.append(flat / flat.norm().clamp_min(1e-12))
        return min_norm_weights(torch.stack(rows).detach(), self.min_weights)

    def end_epoch(self) -> None:
        """Record the epoch's mean weights."""
        if self._epoch:
            self.history.append(torch.stack(self._epoch).mean(0).tolist())
            self._epoch = []


class WeightedModel(nn.Module):
    """A multi-task model plus its ``TaskWeighting`` (so learned weights get optimised)."""

    def __init__(self, model: nn.Module, weighting: TaskWeighting, regression: bool) -> None:
        super().__init__()
        self.model, self.weighting, self.regression = model, weighting, regression

    def forward(self, batch: Batch | Mapping[str, Tensor]) -> Tensor:
        out: Tensor = self.model(batch)
        return out


def multitask_loss(model: nn.Module, data: Mapping[str, Tensor]) -> Tensor:
    """Loss closure for ``train.loop.fit`` over a ``WeightedModel``."""
    assert isinstance(model, WeightedModel)
    losses = task_losses(model(data), data["label"], model.regression)
    shared_fn = getattr(model.model, "shared_parameters", None)
    shared = shared_fn() if callable(shared_fn) and model.weighting.kind == "mgda" else []
    return model.weighting.combine(losses, shared)


def task_aucs(labels: FloatArray, logits: FloatArray) -> list[float]:
    """AUC per task column (NaN labels skipped; NaN when a task has one class)."""
    out = []
    for t in range(labels.shape[1]):
        known = ~np.isnan(labels[:, t])
        y = labels[known, t] > 0.5
        out.append(metrics.auc(y, logits[known, t]) if 0 < y.sum() < len(y) else float("nan"))
    return out


@dataclass
class MultiTaskFit:
    """Result of ``train_multitask``: the loop's result, per-epoch validation AUCs per task
    and the mean task weights per epoch."""

    fit: FitResult
    valid_auc: list[list[float]] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)


def train_multitask(
    model: nn.Module,
    train: Batch,
    valid: Batch | None,
    settings: TrainSettings,
    weighting: TaskWeighting,
    select: Sequence[float] | None = None,
    regression: bool = False,
) -> MultiTaskFit:
    """Fit ``model`` (logits ``[N, T]``) on ``train`` labels ``[N, T]`` with BCE per task,
    combined by ``weighting``; early-stop on the ``select``-weighted mean validation AUC
    (default: plain mean). ``regression``: squared error, validation metric = ``-MSE``."""
    wrapped = WeightedModel(model, weighting, regression)
    aucs: list[list[float]] = []
    validate = None
    if valid is not None:
        assert valid.label is not None
        y = valid.label.numpy()
        sel = np.ones(y.shape[1]) if select is None else np.asarray(select, dtype=np.float64)

        def validate(m: nn.Module) -> float:
            weighting.end_epoch()
            out = predict(m, valid)
            aucs.append(list(-np.nanmean((out - y) ** 2, 0)) if regression else task_aucs(y, out))
            vals = np.nan_to_num(np.asarray(aucs[-1]), nan=0.5)
            return float((vals * sel).sum() / sel.sum())

    wrapped.to(resolve_device(settings.device))
    s = settings
    result = fit(
        wrapped, RowBatches(train, s.batch_size), multitask_loss,
        epochs=s.epochs, lr=s.lr, weight_decay=s.weight_decay, optimizer=s.optimizer,
        seed=s.seed, device=s.device, validate=validate, patience=s.patience,
        progress=s.progress, num_threads=s.threads,
    )  # fmt: skip
    weighting.end_epoch()
    return MultiTaskFit(result, aucs, weighting.history)
