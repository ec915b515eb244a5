"""Sparse embedding gradients: training cost independent of the catalogue size.

With dense gradients every optimiser step touches every row of every embedding table (the
gradient is a zero-filled ``[n_items, d]`` tensor, and Adam then updates both moments and the
weights of all rows), so a step on a 1M-item catalogue costs ~100x one on a 10k-item catalogue
for the same batch. ``sparse_embeddings`` switches a model's ``nn.Embedding``/``EmbeddingBag``
tables to sparse gradients for the duration of training, and ``make_sparse_optimizer`` pairs a
sparse optimiser for those tables (``SparseAdam`` for ``adam``/``adamw``: "lazy" Adam, whose
moments and weights move only for the rows in the batch) with the usual dense one for the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from funnelrec.train.adam_rows import fused_supported, update_rows

SPARSE_OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd")


def sparse_supported(optimizer: str, weight_decay: float) -> bool:
    """Whether ``optimizer`` has a sparse form that matches it (no weight decay: it would
    touch every row)."""
    return optimizer in SPARSE_OPTIMIZERS and weight_decay == 0.0


def embedding_tables(model: nn.Module) -> list[nn.Embedding | nn.EmbeddingBag]:
    return [m for m in model.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]


@contextmanager
def sparse_embeddings(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Give every embedding table of ``model`` sparse gradients inside the block (restored)."""
    tables = embedding_tables(model) if enabled else []
    before = [t.sparse for t in tables]
    for table in tables:
        table.sparse = True
    try:
        yield
    finally:
        for table, flag in zip(tables, before, strict=True):
            table.sparse = flag


class SplitOptimizer:
    """A sparse optimiser for the embedding tables and a dense one for the other parameters,
    stepped together (one ``zero_grad``/``step``/``state_dict``)."""

    def __init__(self, sparse: torch.optim.Optimizer, dense: torch.optim.Optimizer | None) -> None:
        self.parts = [opt for opt in (sparse, dense) if opt is not None]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.parts:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [opt.state_dict() for opt in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for opt, state in zip(self.parts, state_dict["parts"], strict=True):
            opt.load_state_dict(state)


def make_sparse_optimizer(
    model: nn.Module, name: str, lr: float
) -> torch.optim.Optimizer | SplitOptimizer:
    """``name`` (one of ``SPARSE_OPTIMIZERS``) over ``model``, sparse on its embedding tables."""
    table_ids = {id(t.weight) for t in embedding_tables(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    tables = [p for p in params if id(p) in table_ids]
    rest = [p for p in params if id(p) not in table_ids]
    if name in ("sgd", "adagrad"):  # both take sparse and dense gradients
        cls = torch.optim.SGD if name == "sgd" else torch.optim.Adagrad
        return cls(params, lr=lr)
    dense = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    rest_opt = dense(rest, lr=lr, weight_decay=0.0) if rest else None
    return SplitOptimizer(LazyAdam(tables, lr=lr), rest_opt)


class LazyAdam(torch.optim.Optimizer):
    """``torch.optim.SparseAdam``'s update ("lazy" Adam: the moments and weights of the rows
    in the gradient move, the others stay), merging duplicate rows without a sparse
    ``coalesce`` (which was 2-3x slower on the ``[B·history, d]`` gradients of an embedding
    bag) and applying the update to the touched rows by index. Takes sparse gradients of
    ``[n, d]`` tables.

    ``fused`` (default: wherever ``adam_rows.fused_supported``, i.e. CPU tables) merges and
    moves the rows in one compiled pass (``adam_rows.update_rows``); otherwise, or with
    ``fused=False``, in torch ops after ``adam_rows.merged_rows`` (``unique`` +
    ``index_add_``; any device)."""

    def __init__(
        self,
        params: list[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self.fused = fused

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("LazyAdam takes sparse gradients; use Adam for dense ones")
                if param.grad._nnz() == 0:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                moments = state["exp_avg"], state["exp_avg_sq"]
                fused = fused_supported(param) if self.fused is None else self.fused
                update_rows(
                    param, *moments, param.grad, group["betas"], step_size, group["eps"], fused
                )


def clip_grad_norm(params: Iterator[nn.Parameter], max_norm: float) -> Tensor:
    """``nn.utils.clip_grad_norm_`` (used as is for dense gradients) that also takes sparse
    gradients (coalesced first)."""
    with_grad = [p for p in params if p.grad is not None]
    if not any(p.grad is not None and p.grad.is_sparse for p in with_grad):
        return nn.utils.clip_grad_norm_(with_grad, max_norm)
    grads: list[Tensor] = []
    for p in with_grad:
        assert p.grad is not None
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])
    total: Tensor = torch.linalg.vector_norm(norms)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)
    return total
