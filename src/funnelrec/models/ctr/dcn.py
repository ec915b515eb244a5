"""DCN-v2: a cross network of full-rank cross layers in parallel with a deep MLP.

Cross layer ``l``: ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l`` on the flattened field vectors
``x_0 [N, F·d]``; ``L`` layers model crosses up to order ``L + 1``. With ``rank > 0`` each
``W_l`` is low-rank (``U_l V_lᵀ``, DCN-v2's cheaper form) — much faster for many fields.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel, deep_tower


class CrossNetV2(nn.Module):
    """``[N, D] -> [N, D]`` stack of DCN-v2 cross layers (full rank, or ``rank`` ``r``)."""

    def __init__(self, dim: int, layers: int, rank: int = 0) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for _ in range(layers):
            out = nn.Linear(dim if rank <= 0 else rank, dim)
            nn.init.xavier_normal_(out.weight)
            nn.init.zeros_(out.bias)
            blocks.append(out if rank <= 0 else nn.Sequential(nn.Linear(dim, rank, False), out))
        self.layers = nn.ModuleList(blocks)

    def forward(self, x0: Tensor) -> Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class DCNv2(CTRModel):
    """``logit = w · [cross(x_0), MLP(x_0)] + linear``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        width = self.n_fields * config.dim
        self.cross = CrossNetV2(width, config.cross_layers, config.cross_rank)
        self.deep = deep_tower(width, config.hidden, config.dropout)
        deep_out = config.hidden[-1] if config.hidden else 0
        self.out = nn.Linear(width + deep_out, 1)

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        x0 = fields.flatten(1)
        both = torch.cat([self.cross(x0), self.deep(x0)], dim=1)
        out: Tensor = self.out(both).squeeze(-1)
        return out + linear
