"""DIN: target attention over the behaviour sequence (Deep Interest Network).

Each past behaviour ``k`` gets an unnormalised weight ``a(q, k) = MLP([q, k, q-k, q⊙k])``
from the candidate item ``q``; the interest vector ``Σ a·k`` (padding masked) joins the
other field vectors in an MLP. The user-id field, when present, is the long-term interest.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel
from funnelrec.models.layers import mlp


class TargetAttention(nn.Module):
    """``(query [N, d], keys [N, K, d], mask [N, K]) -> [N, d]`` weighted sum of keys."""

    def __init__(self, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.unit = mlp(4 * dim, hidden, 1)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        q = query.unsqueeze(1).expand_as(keys)
        scores: Tensor = self.unit(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        weights = scores * mask.to(scores.dtype)
        return (weights.unsqueeze(-1) * keys).sum(1)


class DIN(CTRModel):
    """``logit = linear + MLP([flatten(fields), attention(item, sequence)])``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        if schema.seq_len == 0 or schema.item_field is None:
            raise ValueError("DIN needs a behaviour sequence and an item_id field")
        self.attention = TargetAttention(config.dim, config.att_hidden)
        width = (self.n_fields + 1) * config.dim
        self.deep = mlp(width, config.hidden, 1, config.dropout)

    @property
    def reads_sequence(self) -> bool:
        return True

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        seq, mask = self.embed.sequence(batch)
        interest = self.attention(self.embed.item(fields), seq, mask)
        x = torch.cat([fields.flatten(1), interest], dim=1)
        deep: Tensor = self.deep(x).squeeze(-1)
        return linear + deep
