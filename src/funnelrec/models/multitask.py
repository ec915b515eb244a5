"""Multi-task ranking models: single-task towers, Shared-Bottom, MMoE, PLE and ESMM.

Every model maps a ``Batch`` to logits ``[N, T]`` (one column per task, in the order of
``MultiTaskConfig.tasks``). The input of the shared part is the CTR models' field embedding
(``CTRModel.inputs``: sparse / multi-valued / dense fields and the optional short-term
interest field, flattened to ``[N, F·d]``).

* ``single``: one embedding and MLP per task (no sharing) — the single-task baseline.
* ``sharedbottom``: one shared MLP, a tower per task (Caruana 1997).
* ``mmoe``: ``E`` expert MLPs; each task mixes them with its own softmax gate over the
  input, then its tower (Ma et al. KDD 2018).
* ``ple``: progressive layered extraction (Tang et al. RecSys 2020): each level has shared
  and task-specific experts; a task's gate mixes its own and the shared experts, the shared
  gate (all but the last level) mixes all of them; levels are stacked.
* ``esmm``: tasks form a conversion chain (``click → like → purchase``): each task ``t``
  predicts ``p(y_t | y_{t-1})`` with any CTR backbone of ``models/ctr`` (``backbone``, all
  sharing one embedding), and its output is the entire-space probability
  ``p(y_t) = Π_{s ≤ t} p(y_s | y_{s-1})`` (Ma et al. SIGIR 2018) as a logit, so every task is
  trained on all impressions; ``conditional_logits`` gives the per-step (e.g. CVR) logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr import CTR_MODELS, CTRConfig, CTRModel, build_model
from funnelrec.models.ctr.base import Interest, deep_tower
from funnelrec.models.layers import mlp

Arch = Literal["single", "sharedbottom", "mmoe", "ple", "esmm"]
ARCHS: tuple[str, ...] = ("single", "sharedbottom", "mmoe", "ple", "esmm")


@dataclass(frozen=True)
class MultiTaskConfig:
    """Hyper-parameters of the multi-task models.

    Attributes:
        arch: architecture (see module doc).
        n_tasks: ``T``.
        dim: field embedding size; ``interest``: short-term interest encoder (as the CTR models).
        bottom: shared-bottom MLP (also each single-task MLP before its tower).
        experts, expert_hidden: MMoE experts and their MLP sizes (the last is the output width).
        shared_experts, task_experts, levels: PLE experts per level and number of levels.
        tower: per-task tower MLP before the logit.
        backbone: ESMM per-task CTR architecture (``models.ctr`` name).
        dropout: in every MLP.
    """

    arch: Arch = "mmoe"
    n_tasks: int = 2
    dim: int = 8
    interest: Interest = "none"
    bottom: tuple[int, ...] = (128, 64)
    experts: int = 4
    expert_hidden: tuple[int, ...] = (64,)
    shared_experts: int = 2
    task_experts: int = 1
    levels: int = 2
    tower: tuple[int, ...] = (32,)
    backbone: str = "deepfm"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown multi-task architecture {self.arch!r}; known: {ARCHS}")
        if self.n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {self.n_tasks}")
        if self.arch == "esmm" and self.backbone not in CTR_MODELS:
            raise ValueError(f"unknown ESMM backbone {self.backbone!r}; known: {list(CTR_MODELS)}")
        for name in ("experts", "shared_experts", "levels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.expert_hidden or not self.bottom:
            raise ValueError("expert_hidden and bottom need at least one layer")

    def ctr_config(self) -> CTRConfig:
        return CTRConfig(dim=self.dim, interest=self.interest, hidden=self.tower)


class MultiTaskModel(CTRModel):
    """Base: ``forward(batch) -> logits [N, T]`` over the shared field embedding."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config.ctr_config())
        self.mt = config
        self.in_dim = self.n_fields * config.dim

    def flat(self, batch: Batch) -> Tensor:
        """``[N, F·d]`` flattened field embeddings (+ interest field)."""
        fields, _ = self.inputs(batch)
        return fields.flatten(1)

    def towers(self, width: int) -> nn.ModuleList:
        """One ``MLP(width → tower → 1)`` per task."""
        c = self.mt
        return nn.ModuleList(mlp(width, c.tower, 1, c.dropout) for _ in range(c.n_tasks))

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's loss depends on (for MGDA's gradient balancing)."""
        return list(self.embed.parameters()) + (
            list(self.interest.parameters()) if self.interest is not None else []
        )


class SingleTask(MultiTaskModel):
    """``T`` independent models (own embedding, MLP, tower): the single-task baseline."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config)
        one = MultiTaskConfig(**{**config.__dict__, "arch": "sharedbottom", "n_tasks": 1})
        self.nets = nn.ModuleList(SharedBottom(schema, one) for _ in range(config.n_tasks))
        del self.embed  # each task has its own; the base embedding is unused

    def score(self, batch: Batch) -> Tensor:
        return torch.cat([net(batch) for net in self.nets], dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return []


class SharedBottom(MultiTaskModel):
    """``logit_t = tower_t(MLP(x))``."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config)
        self.bottom = deep_tower(self.in_dim, config.bottom, config.dropout)
        self.heads = self.towers(config.bottom[-1])

    def score(self, batch: Batch) -> Tensor:
        h = self.bottom(self.flat(batch))
        return torch.cat([head(h) for head in self.heads], dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return super().shared_parameters() + list(self.bottom.parameters())


def _experts(in_dim: int, n: int, hidden: tuple[int, ...], dropout: float) -> nn.ModuleList:
    return nn.ModuleList(deep_tower(in_dim, hidden, dropout) for _ in range(n))


def _mix(experts: nn.ModuleList, gate: nn.Module, x: Tensor, gate_in: Tensor) -> Tensor:
    """Softmax-gated sum of expert outputs: ``[N, H]``."""
    out = torch.stack([e(x) for e in experts], dim=1)  # [N, E, H]
    weights = F.softmax(gate(gate_in), dim=-1).unsqueeze(-1)  # [N, E, 1]
    return (out * weights).sum(1)


class MMoE(MultiTaskModel):
    """``logit_t = tower_t(Σ_k softmax(W_t x)_k · expert_k(x))``."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config)
        c = config
        self.experts = _experts(self.in_dim, c.experts, c.expert_hidden, c.dropout)
        self.gates = nn.ModuleList(nn.Linear(self.in_dim, c.experts) for _ in range(c.n_tasks))
        self.heads = self.towers(c.expert_hidden[-1])

    def gate_weights(self, batch: Batch) -> Tensor:
        """``[N, T, E]`` gate distributions (rows sum to 1)."""
        x = self.flat(batch)
        return torch.stack([F.softmax(g(x), dim=-1) for g in self.gates], dim=1)

    def score(self, batch: Batch) -> Tensor:
        x = self.flat(batch)
        outs = [
            head(_mix(self.experts, g, x, x))
            for g, head in zip(self.gates, self.heads, strict=True)
        ]
        return torch.cat(outs, dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return super().shared_parameters() + list(self.experts.parameters())


class _Extraction(nn.Module):
    """One PLE level: task-specific and shared experts, task gates and (unless ``last``) a
    shared gate; inputs and outputs are ``T + 1`` representations (tasks..., shared)."""

    def __init__(self, in_dim: int, c: MultiTaskConfig, last: bool) -> None:
        super().__init__()
        h = c.expert_hidden
        n_t, n_s = c.task_experts, c.shared_experts
        self.task = nn.ModuleList(_experts(in_dim, n_t, h, c.dropout) for _ in range(c.n_tasks))
        self.shared = _experts(in_dim, n_s, h, c.dropout)
        self.task_gates = nn.ModuleList(nn.Linear(in_dim, n_t + n_s) for _ in range(c.n_tasks))
        self.shared_gate = None if last else nn.Linear(in_dim, c.n_tasks * n_t + n_s)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        shared_x = xs[-1]
        shared_out = [e(shared_x) for e in self.shared]
        outs, all_out = [], []
        for t, (experts, gate) in enumerate(zip(self.task, self.task_gates, strict=True)):
            own = [e(xs[t]) for e in experts]  # type: ignore[attr-defined]
            all_out += own
            stacked = torch.stack(own + shared_out, dim=1)
            w = F.softmax(gate(xs[t]), dim=-1).unsqueeze(-1)
            outs.append((stacked * w).sum(1))
        if self.shared_gate is not None:
            stacked = torch.stack(all_out + shared_out, dim=1)
            w = F.softmax(self.shared_gate(shared_x), dim=-1).unsqueeze(-1)
            outs.append((stacked * w).sum(1))
        return outs


class PLE(MultiTaskModel):
    """``levels`` stacked extraction networks, then a tower per task."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config)
        c, width = config, config.expert_hidden[-1]
        self.levels = nn.ModuleList(
            _Extraction(self.in_dim if i == 0 else width, c, last=i == c.levels - 1)
            for i in range(c.levels)
        )
        self.heads = self.towers(width)

    def score(self, batch: Batch) -> Tensor:
        x = self.flat(batch)
        xs = [x] * (self.mt.n_tasks + 1)
        for level in self.levels:
            xs = level(xs)
        return torch.cat([head(h) for head, h in zip(self.heads, xs, strict=True)], dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        shared = [p for lv in self.levels for p in lv.shared.parameters()]  # type: ignore[union-attr]
        return super().shared_parameters() + shared


class ESMM(MultiTaskModel):
    """Entire-space chain model: task ``t`` = ``Π_{s ≤ t} σ(backbone_s(x))`` (as a logit)."""

    def __init__(self, schema: Schema, config: MultiTaskConfig) -> None:
        super().__init__(schema, config)
        ctr = config.ctr_config()
        nets = [build_model(config.backbone, schema, ctr) for _ in range(config.n_tasks)]
        for net in nets:  # one shared embedding (ESMM's shared lookup table)
            net.embed = self.embed
            net.interest = self.interest
        self.nets = nn.ModuleList(nets)

    def conditional_logits(self, batch: Batch) -> Tensor:
        """``[N, T]`` logits of ``p(y_t = 1 | y_{t-1} = 1)`` (column 0: the CTR)."""
        return torch.stack([net(batch) for net in self.nets], dim=1)

    def score(self, batch: Batch) -> Tensor:
        log_p = F.logsigmoid(self.conditional_logits(batch)).cumsum(dim=1)  # log p(y_t = 1)
        return log_p - torch.log(-torch.expm1(log_p).clamp_max(-1e-7))


MULTITASK_MODELS: dict[str, type[MultiTaskModel]] = {
    "single": SingleTask,
    "sharedbottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "esmm": ESMM,
}


def build_multitask(schema: Schema, config: MultiTaskConfig) -> MultiTaskModel:
    """A fresh multi-task model of ``config.arch`` for batches laid out as ``schema``."""
    return MULTITASK_MODELS[config.arch](schema, config)


__all__ = [
    "ARCHS",
    "ESMM",
    "MULTITASK_MODELS",
    "PLE",
    "MMoE",
    "MultiTaskConfig",
    "MultiTaskModel",
    "SharedBottom",
    "SingleTask",
    "build_multitask",
]
