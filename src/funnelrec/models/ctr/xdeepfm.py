"""xDeepFM: linear term + Compressed Interaction Network (CIN) + deep MLP.

CIN layer ``k``: ``X^k_h = Σ_{i,j} W^{k,h}_{ij} (X^{k-1}_i ⊙ X^0_j)`` — vector-wise
crosses of the previous layer with the input fields (a 1×1 convolution over the outer
products, computed as one matmul); each layer's maps are sum-pooled over the embedding
dimension.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel
from funnelrec.models.layers import mlp


class CIN(nn.Module):
    """``[N, m, d] -> [N, Σ H_k]`` pooled feature maps of every CIN layer."""

    def __init__(self, n_fields: int, sizes: tuple[int, ...]) -> None:
        super().__init__()
        prev = [n_fields, *sizes[:-1]]
        self.convs = nn.ModuleList(
            nn.Linear(h * n_fields, size) for h, size in zip(prev, sizes, strict=True)
        )

    def forward(self, x0: Tensor) -> Tensor:
        n, _, d = x0.shape
        x, pooled = x0, []
        for conv in self.convs:
            z = torch.einsum("nhd,nmd->ndhm", x, x0).reshape(n, d, -1)
            x = torch.relu(conv(z)).transpose(1, 2)
            pooled.append(x.sum(-1))
        return torch.cat(pooled, dim=1)


class XDeepFM(CTRModel):
    """``logit = linear + w · CIN(fields) + MLP(flatten(fields))``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        self.cin = CIN(self.n_fields, config.cin)
        self.cin_out = nn.Linear(sum(config.cin), 1)
        self.deep = mlp(self.n_fields * config.dim, config.hidden, 1, config.dropout)

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        cin: Tensor = self.cin_out(self.cin(fields)).squeeze(-1)
        deep: Tensor = self.deep(fields.flatten(1)).squeeze(-1)
        return linear + cin + deep
