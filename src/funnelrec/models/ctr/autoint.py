"""AutoInt: multi-head self-attention over the field embeddings (interacting layers).

Each block lets every field attend to every other field, so one block models second-order
crosses and ``L`` blocks crosses up to order ``L + 1``; residual connections keep the
lower orders. With ``hidden`` a parallel MLP is added (AutoInt+).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel
from funnelrec.models.layers import mlp


class InteractingLayer(nn.Module):
    """``[N, F, d_in] -> [N, F, heads·d_att]``: multi-head self-attention + residual, ReLU."""

    def __init__(self, d_in: int, d_att: int, heads: int) -> None:
        super().__init__()
        self.heads, self.d_att = heads, d_att
        self.qkv = nn.Linear(d_in, 3 * heads * d_att, bias=False)
        self.residual = nn.Linear(d_in, heads * d_att, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n, f, _ = x.shape
        q, k, v = self.qkv(x).view(n, f, 3, self.heads, self.d_att).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / self.d_att**0.5, dim=-1)
        out = (att @ v).transpose(1, 2).reshape(n, f, self.heads * self.d_att)
        return torch.relu(out + self.residual(x))


class AutoInt(CTRModel):
    """``logit = linear + w · flatten(blocks(fields)) (+ MLP(flatten(fields)))``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        d, heads = config.dim, config.heads
        widths = [d] + [heads * d] * config.blocks
        self.blocks = nn.ModuleList(
            InteractingLayer(widths[i], d, heads) for i in range(config.blocks)
        )
        self.out = nn.Linear(self.n_fields * widths[-1], 1)
        self.deep = (
            mlp(self.n_fields * d, config.hidden, 1, config.dropout) if config.hidden else None
        )

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        x = fields
        for block in self.blocks:
            x = block(x)
        logit: Tensor = linear + self.out(x.flatten(1)).squeeze(-1)
        if self.deep is not None:
            logit = logit + self.deep(fields.flatten(1)).squeeze(-1)
        return logit
