"""SASRec (Kang & McAuley, 2018): causal self-attention over the item sequence.

Positions are counted from the most recent item (so trimming padding changes nothing);
each position attends to itself and the real items before it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.models.dropout import Dropout, counter_dropout
from funnelrec.models.sequence.base import RecencyPositions, SequenceEncoder, padding_mask


class CausalBlock(nn.Module):
    """Pre-norm Transformer block: masked multi-head attention + point-wise feed-forward.

    ``fast_dropout``: counter-based dropout masks (``models.dropout``), the attention's
    included (its weights then come from an explicit softmax instead of
    ``scaled_dot_product_attention``, while training only)."""

    def __init__(self, dim: int, heads: int, dropout: float, fast_dropout: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.dropout, self.fast_dropout = heads, dropout, fast_dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim), nn.GELU(), Dropout(dropout, fast_dropout), nn.Linear(dim, dim)
        )
        self.drop = Dropout(dropout, fast_dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        """``x`` ``[B, L, d]``; ``allowed`` ``[B, 1, L, L]`` True where query may attend key."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        att = self.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), allowed)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        out: Tensor = x + self.drop(self.ffn(self.norm2(x)))
        return out

    def attend(self, q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
        """``[B, H, L, d/H]`` attention outputs of ``q``, ``k``, ``v`` (each that shape)."""
        p = self.dropout if self.training else 0.0
        if not (self.fast_dropout and p > 0):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)  # every row keeps itself
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        out: Tensor = counter_dropout(weights, p) @ v
        return out


class SASRec(SequenceEncoder):
    """Item + position embeddings → ``blocks`` causal Transformer blocks → layer norm.

    ``fast_dropout``: counter-based dropout masks everywhere (``models.dropout``): much
    cheaper on the CPU, another random stream than ``nn.Dropout``'s."""

    causal: ClassVar[bool] = True

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        *,
        blocks: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        fast_dropout: bool = False,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(n_items, dim, max_len, item_category, init_std)
        self.positions = RecencyPositions(max_len, dim, init_std)
        self.blocks = nn.ModuleList(
            CausalBlock(dim, heads, dropout, fast_dropout) for _ in range(blocks)
        )
        self.drop = Dropout(dropout, fast_dropout)
        self.norm = nn.LayerNorm(dim)

    def encode(self, seq: Tensor) -> Tensor:
        """``[B, L, d]``: output at ``t`` summarises items ``<= t``."""
        n = seq.shape[1]
        real = padding_mask(seq)
        x = self.embed(seq) * math.sqrt(self.dim) + self.positions(seq)
        x = self.drop(x) * real.unsqueeze(-1)
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        eye = torch.eye(n, dtype=torch.bool, device=seq.device)
        allowed = ((causal & real.unsqueeze(1)) | eye).unsqueeze(1)
        for block in self.blocks:
            x = block(x, allowed) * real.unsqueeze(-1)
        out: Tensor = self.norm(x)
        return out
