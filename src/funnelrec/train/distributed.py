"""Data-parallel training on PyTorch DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m funnelrec.cli fit --distributed ...`` starts ``N`` processes
(``--nnodes``/``--node_rank``/``--rdzv_endpoint`` for several hosts); each reads its rank from
the environment torchrun sets. ``init()`` joins the process group (``gloo`` on CPU, ``nccl``
on GPU). While a group is active, ``train.loop.fit`` (the one training loop) wraps the model
in ``DistributedDataParallel`` and shards the batch stream by rank: every process draws the same
seeded batch sequence and trains on batches ``rank, rank + N, ...``, so ``batch_size`` is per
process and one optimiser step sees ``N × batch_size`` examples — the same global batch as a
single process with ``N`` times the batch size. Gradients are averaged by DDP; the training loss
is all-reduced; the validation metric is computed on rank 0 and broadcast, so every rank takes
the same early-stopping decision. Only rank 0 writes artifacts (``is_main``).

Row-wise sharded embedding tables (TorchRec ``EmbeddingBagCollection`` under
``DistributedModelParallel``) would replace the model wrapper in ``wrap`` and the id features of
a batch; nothing here assumes the model is replicated beyond that one function.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")
Backend = Literal["auto", "gloo", "nccl"]
LossFn = Callable[[nn.Module, Mapping[str, Tensor]], Tensor]


@dataclass(frozen=True)
class Context:
    """This process's place in the group: ``rank`` of ``world_size``, ``local_rank`` on its host."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the rendezvous variables of ``torchrun`` are set."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init(backend: Backend = "auto", timeout_s: float = 1800.0) -> Context:
    """Join the process group described by torchrun's environment (idempotent).

    Raises:
        RuntimeError: when not started by ``torchrun`` (no ``RANK``/``WORLD_SIZE``/...).
    """
    if not dist.is_initialized():
        if not launched_by_torchrun():
            raise RuntimeError(
                "distributed training needs torchrun's environment (RANK, WORLD_SIZE, "
                "MASTER_ADDR, MASTER_PORT): launch with `torchrun --nproc_per_node=N -m "
                "funnelrec.cli fit --distributed ...`"
            )
        name = backend if backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
        if name == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(name, timeout=timedelta(seconds=timeout_s))
    found = current()
    assert found is not None
    return found


def current() -> Context | None:
    """The active group's context, or ``None`` when not running distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return Context(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(dist.get_backend()),
    )


def active() -> Context | None:
    """``current()`` when the group has more than one process (else ``None``)."""
    ctx = current()
    return ctx if ctx is not None and ctx.world_size > 1 else None


def is_main() -> bool:
    """True on rank 0 and when not distributed: the process that writes artifacts."""
    ctx = current()
    return ctx is None or ctx.is_main


def shutdown() -> None:
    """Leave the process group (no-op when none is active)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(device: torch.device, ctx: Context) -> torch.device:
    """A CUDA device becomes this process's own GPU (``cuda:<local_rank>``)."""
    return torch.device("cuda", ctx.local_rank) if device.type == "cuda" else device


def shard(batches: Iterator[T], ctx: Context) -> Iterator[T]:
    """Batches ``rank, rank + world_size, ...`` of a stream every rank draws identically."""
    for i, batch in enumerate(batches):
        if i % ctx.world_size == ctx.rank:
            yield batch


class LossModule(nn.Module):
    """``forward(batch) = loss_fn(model, batch)``: routes the loss through one ``forward`` so
    DDP sees every parameter use (models expose ``user_vectors``/``item_vectors``, not
    ``forward``)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self.loss_fn(self.model, batch)


def wrap(model: nn.Module, loss_fn: LossFn, device: torch.device) -> DistributedDataParallel:
    """DDP over ``LossModule(model, loss_fn)`` (the hook where TorchRec's
    ``DistributedModelParallel`` would go for row-wise sharded tables)."""
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(
        LossModule(model, loss_fn), device_ids=ids, find_unused_parameters=True
    )


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over every rank."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def broadcast_value(value: float | None, device: torch.device) -> float | None:
    """Rank 0's ``value`` on every rank (``None`` travels as NaN)."""
    tensor = torch.tensor([float("nan") if value is None else value], dtype=torch.float64)
    tensor = tensor.to(device)
    dist.broadcast(tensor, src=0)
    out = float(tensor.item())
    return None if out != out else out
