"""The one training loop for every model: epochs, optimiser, early stopping, best restore.

Models are plain ``nn.Module``s; what varies between models is the batch iterator and the
loss closure. Randomness comes from ``seed`` only: a ``numpy.random.Generator`` handed to the
batch iterator and a forked (scoped) torch RNG state for initialisation-free ops such as
dropout, so the global RNGs are left as they were.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from funnelrec.train import distributed
from funnelrec.train.losses import LOGITS_WORKSPACE
from funnelrec.train.sparse import (
    SplitOptimizer,
    clip_grad_norm,
    make_sparse_optimizer,
    sparse_embeddings,
    sparse_supported,
)

Batch = Mapping[str, Tensor]
BatchFn = Callable[[int, np.random.Generator], Iterator[Batch]]
LossFn = Callable[[nn.Module, Batch], Tensor]
ValidateFn = Callable[[nn.Module], float]
Optimizer = Literal["adam", "adamw", "adagrad", "sgd"]
AnyOptimizer = torch.optim.Optimizer | SplitOptimizer


@dataclass
class EpochLog:
    """One epoch: 1-based ``epoch``, mean training ``loss``, validation ``metric``, seconds."""

    epoch: int
    loss: float
    metric: float | None
    seconds: float


@dataclass
class FitResult:
    """``best_epoch``: 1-based epoch whose weights the model holds after ``fit``."""

    best_epoch: int
    best_metric: float | None = None
    history: list[EpochLog] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


@dataclass
class TrainingRun:
    """One call of ``fit``: the trained module's class name and its per-epoch log."""

    model: str
    result: FitResult


_RUNS: ContextVar[list[TrainingRun] | None] = ContextVar("funnelrec_training_runs", default=None)


@contextmanager
def record_runs() -> Iterator[list[TrainingRun]]:
    """Collect every ``fit`` call made inside the block (this thread/context only), in order:
    the training curves of a whole funnel fit, for logs and reports."""
    runs: list[TrainingRun] = []
    token = _RUNS.set(runs)
    try:
        yield runs
    finally:
        _RUNS.reset(token)


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` (falls back to CPU with a warning when absent) or ``"auto"``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn("CUDA asked for but not available; training on CPU", stacklevel=2)
        return torch.device("cpu")
    return torch.device(device)


def make_optimizer(
    params: Iterator[nn.Parameter], name: Optimizer, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; known: adam, adamw, adagrad, sgd")


def fit(
    model: nn.Module,
    batches: BatchFn,
    loss_fn: LossFn,
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
    optimizer: Optimizer = "adam",
    seed: int = 0,
    device: str = "cpu",
    validate: ValidateFn | None = None,
    patience: int = 3,
    grad_clip: float | None = None,
    progress: bool | None = None,
    num_threads: int | None = None,
    sparse: bool = False,
) -> FitResult:
    """Train ``model`` in place; with ``validate``, early-stop and keep the best epoch.

    Args:
        model: any module; moved to ``device``.
        batches: ``(epoch, rng) -> iterator of {name: tensor}`` (tensors moved to ``device``).
        loss_fn: ``(model, batch) -> scalar loss``.
        epochs: maximum number of epochs.
        validate: ``model -> metric`` (higher is better), run after every epoch in eval mode
            without gradients; training stops after ``patience`` epochs without a new best
            and the best epoch's weights are restored.
        progress: show a tqdm bar (default: only when stderr is a terminal).
        num_threads: torch intra-op threads while training (restored afterwards); ``1`` is
            much faster for small models on a busy machine.
        sparse: sparse gradients for the embedding tables (``train.sparse``): a step costs
            the same whatever the catalogue size (lazy Adam for ``adam``); needs an optimiser
            of ``sparse_supported`` (no weight decay); ignored under ``torchrun``.

    Under ``torchrun`` (a process group of several ranks, see ``train.distributed``) the
    model trains as ``DistributedDataParallel``: rank ``r`` takes batches ``r, r + N, ...``
    of the shared seeded stream, the loss is all-reduced and rank 0's validation metric is
    broadcast, so all ranks stop at the same epoch with the same weights.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    ctx = distributed.active()
    dev = resolve_device(device)
    dev = dev if ctx is None else distributed.device_for(dev, ctx)
    model.to(dev)
    sparse = sparse and ctx is None
    if sparse and not sparse_supported(optimizer, weight_decay):
        raise ValueError(
            "sparse gradients need weight_decay 0 and one of adam, adamw, adagrad, sgd; "
            f"got {optimizer!r} with weight_decay {weight_decay}"
        )
    opt: AnyOptimizer = (
        make_sparse_optimizer(model, optimizer, lr)
        if sparse
        else make_optimizer(model.parameters(), optimizer, lr, weight_decay)
    )
    step = _Step(model, loss_fn, ctx, dev)
    rng = np.random.default_rng(seed)
    show = (_interactive() if progress is None else progress) and distributed.is_main()
    result = FitResult(best_epoch=epochs)
    best_state: dict[str, Tensor] | None = None
    with (
        torch_threads(num_threads),
        seeded(seed, dev),
        sparse_embeddings(model, sparse),
        logits_workspace(),
    ):
        bar = tqdm(range(1, epochs + 1), desc=type(model).__name__, disable=not show, leave=False)
        for epoch in bar:
            start = time.perf_counter()
            loss = step.epoch(batches(epoch, rng), opt, grad_clip, _rank_sharded(batches))
            metric = step.validate(validate)
            result.history.append(EpochLog(epoch, loss, metric, time.perf_counter() - start))
            bar.set_postfix(loss=f"{loss:.4f}", metric="-" if metric is None else f"{metric:.4f}")
            if metric is None:
                continue
            if result.best_metric is None or metric > result.best_metric:
                result.best_epoch, result.best_metric = epoch, metric
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - result.best_epoch >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    runs = _RUNS.get()
    if runs is not None:
        runs.append(TrainingRun(type(model).__name__, result))
    return result


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run a block with torch's RNG seeded by ``seed``; the global RNG state is restored after
    (``fork_rng``), so callers' randomness is unaffected."""
    cuda = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@contextmanager
def logits_workspace() -> Iterator[None]:
    """A fresh ``LOGITS_WORKSPACE`` for one training run, dropped at its end (its memory
    goes back; a step whose backward never ran cannot leave it in use for the next run)."""
    LOGITS_WORKSPACE.clear()
    try:
        yield
    finally:
        LOGITS_WORKSPACE.clear()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``: leave it)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)


class _Step:
    """Epochs of ``model`` under ``loss_fn``: plain, or DDP-wrapped with the batch stream
    sharded by rank (``ctx``)."""

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, ctx: distributed.Context | None, dev: torch.device
    ) -> None:
        self.model, self.loss_fn, self.ctx, self.device = model, loss_fn, ctx, dev
        self.ddp = None if ctx is None else distributed.wrap(model, loss_fn, dev)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        if self.ddp is None:
            return self.loss_fn(model, batch)
        out: Tensor = self.ddp(batch)
        return out

    def epoch(
        self,
        batches: Iterator[Batch],
        opt: AnyOptimizer,
        grad_clip: float | None,
        rank_sharded: bool = False,
    ) -> float:
        """One pass; the mean loss over every rank's batches (``rank_sharded``: the stream is
        already this rank's share, e.g. per-rank Parquet chunks)."""
        dev = self.device
        if self.ctx is None or self.ddp is None:
            total, count = _train_epoch(self.model, batches, self.loss, opt, dev, grad_clip)
        else:
            with self.ddp.join():  # ranks may get one batch more or less than others
                mine = batches if rank_sharded else distributed.shard(batches, self.ctx)
                total, count = _train_epoch(self.model, mine, self.loss, opt, dev, grad_clip)
            total, n = distributed.all_reduce_sum([total, count], self.device)
            count = int(n)
        if count == 0:
            raise ValueError("the batch iterator yielded no batch")
        return total / count

    def validate(self, validate: ValidateFn | None) -> float | None:
        if self.ctx is None:
            return _validate(self.model, validate)
        value = _validate(self.model, validate) if self.ctx.is_main else None
        return distributed.broadcast_value(value, self.device)


def _rank_sharded(batches: BatchFn) -> bool:
    """Batch functions with ``rank_sharded = True`` yield only this rank's batches."""
    return bool(getattr(batches, "rank_sharded", False))


def _train_epoch(
    model: nn.Module,
    batches: Iterator[Batch],
    loss_fn: LossFn,
    opt: AnyOptimizer,
    device: torch.device,
    grad_clip: float | None,
) -> tuple[float, int]:
    """One pass over ``batches``; returns the summed loss and the number of batches."""
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        on_device = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, on_device)
        loss.backward()  # type: ignore[no-untyped-call]
        if grad_clip is not None:
            clip_grad_norm(model.parameters(), grad_clip)
        opt.step()
        total += float(loss.detach())
        count += 1
    return total, count


def _validate(model: nn.Module, validate: ValidateFn | None) -> float | None:
    if validate is None:
        return None
    model.eval()
    with torch.no_grad():
        return float(validate(model))


def _interactive() -> bool:
    """Progress bars by default only on a terminal, never under ``FUNNELREC_QUIET=1``
    (``funnelrec ... --quiet`` sets it)."""
    return sys.stderr.isatty() and os.environ.get("FUNNELREC_QUIET") != "1"
