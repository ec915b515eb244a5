"""Multi-task models (Shared-Bottom, MMoE, PLE, ESMM, single) and multi-task training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from funnelrec.batch import Batch, FieldSpec, Schema
from funnelrec.eval import metrics
from funnelrec.models.multitask import ESMM, MMoE, MultiTaskConfig, build_multitask
from funnelrec.train.loop import seeded
from funnelrec.train.multitask import (
    TaskWeighting,
    min_norm_weights,
    task_losses,
    train_multitask,
)
from funnelrec.train.rows import TrainSettings, predict

SCHEMA = Schema(
    sparse=(FieldSpec("a", 12, "t"), FieldSpec("b", 7, "t")),
    dense=(FieldSpec("x", 1, "t"), FieldSpec("z", 1, "t")),
)
TINY = {"dim": 4, "bottom": (8,), "expert_hidden": (8,), "tower": (4,), "experts": 3}


def tiny_batch(n: int = 64, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    sparse = np.stack([rng.integers(0, 12, n), rng.integers(0, 7, n)], axis=1)
    return Batch.from_numpy(sparse, rng.normal(size=(n, 2)).astype(np.float32))


@pytest.mark.parametrize("arch", ["single", "sharedbottom", "mmoe", "ple", "esmm"])
def test_every_arch_gives_one_logit_per_task(arch: str) -> None:
    with seeded(0):
        model = build_multitask(SCHEMA, MultiTaskConfig(arch=arch, n_tasks=3, **TINY))  # type: ignore[arg-type]
    out = model(tiny_batch())
    assert out.shape == (64, 3)
    assert torch.isfinite(out).all()
    assert len(model.shared_parameters()) > 0 or arch == "single"


def test_mmoe_gates_are_distributions_per_task() -> None:
    with seeded(0):
        model = MMoE(SCHEMA, MultiTaskConfig(arch="mmoe", n_tasks=2, **TINY))
    gates = model.gate_weights(tiny_batch())
    assert gates.shape == (64, 2, 3)
    torch.testing.assert_close(gates.sum(-1), torch.ones(64, 2))


def test_esmm_is_a_product_of_conditionals() -> None:
    with seeded(0):
        model = ESMM(SCHEMA, MultiTaskConfig(arch="esmm", n_tasks=3, backbone="fm", **TINY))
    batch = tiny_batch()
    cond = torch.sigmoid(model.conditional_logits(batch))
    joint = torch.sigmoid(model(batch))
    torch.testing.assert_close(joint, torch.cumprod(cond, dim=1), rtol=1e-4, atol=1e-6)
    assert (joint[:, 1:] <= joint[:, :-1] + 1e-6).all()  # purchase ≤ like ≤ click
    assert model.nets[1].embed is model.embed  # one shared embedding table


def test_bad_config_is_rejected_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'moe'"):
        MultiTaskConfig(arch="moe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'nope'"):
        MultiTaskConfig(arch="esmm", backbone="nope")


def test_task_losses_skip_unknown_labels() -> None:
    logits = torch.zeros(4, 2)
    labels = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [1.0, float("nan")], [0.0, 0.0]])
    torch.testing.assert_close(task_losses(logits, labels), torch.full((2,), float(np.log(2))))


def test_regression_losses_are_squared_errors() -> None:
    out = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    labels = torch.tensor([[0.0, float("nan")], [1.0, 0.0]])
    torch.testing.assert_close(task_losses(out, labels, regression=True), torch.tensor([2.5, 4.0]))


def test_min_norm_weights_known_answers() -> None:
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    # min_w  w² + 4(1-w)²  →  w = 0.8
    torch.testing.assert_close(min_norm_weights(g), torch.tensor([0.8, 0.2]), atol=1e-4, rtol=0)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    torch.testing.assert_close(min_norm_weights(opposite), torch.tensor([0.5, 0.5]))
    bounded = min_norm_weights(g, torch.tensor([0.0, 0.5]))  # w_2 ≥ 0.5 binds
    torch.testing.assert_close(bounded, torch.tensor([0.5, 0.5]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"1\.200"):
        min_norm_weights(g, torch.tensor([0.6, 0.6]))


def two_task_data(n: int, seed: int) -> Batch:
    """Task 0 depends on field a, task 1 on field a and the dense x (shared structure)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(2, 12, n), rng.integers(2, 7, n)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    p0 = 1 / (1 + np.exp(-(a - 7) * 0.8))
    p1 = 1 / (1 + np.exp(-((a - 7) * 0.5 + 1.5 * x[:, 0])))
    y = np.stack([rng.random(n) < p0, rng.random(n) < p1], axis=1).astype(np.float32)
    return Batch.from_numpy(np.stack([a, b], axis=1), x, label=y)


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "mgda"])
def test_mmoe_learns_both_tasks_with_each_weighting(weighting: str) -> None:
    train, valid = two_task_data(3000, 0), two_task_data(1000, 1)
    with seeded(0):
        model = build_multitask(SCHEMA, MultiTaskConfig(arch="mmoe", n_tasks=2, **TINY))
    w = TaskWeighting(2, weighting)  # type: ignore[arg-type]
    s = TrainSettings(epochs=6, batch_size=256, lr=1e-2, threads=1, patience=6)
    result = train_multitask(model, train, valid, s, w)
    assert valid.label is not None
    logits = predict(model, valid)
    for t in range(2):
        assert metrics.auc(valid.label.numpy()[:, t], logits[:, t]) > 0.8
    assert len(result.weights) >= 1 and len(result.valid_auc) == result.fit.epochs_run
    if weighting == "mgda":
        assert all(abs(sum(row) - 1) < 1e-4 for row in result.weights)
    if weighting == "uncertainty":
        assert w.log_var is not None and bool((w.log_var.detach() != 0).any())
