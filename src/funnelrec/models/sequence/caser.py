"""Caser (Tang & Wang, 2018): horizontal and vertical convolutions over the last L items."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.models.sequence.base import SequenceEncoder


class Caser(SequenceEncoder):
    """The ``[L, d]`` embedding "image" of the last ``max_len`` items →
    ``n_h`` horizontal filters of every height ``1..L`` (max-pooled over time) and ``n_v``
    vertical filters (``L × 1``) → dropout → linear → user vector ``[B, d]``.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int = 5,
        *,
        n_h: int = 16,
        n_v: int = 4,
        dropout: float = 0.3,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(n_items, dim, max_len, item_category, init_std)
        self.horizontal = nn.ModuleList(nn.Conv2d(1, n_h, (h, dim)) for h in range(1, max_len + 1))
        self.vertical = nn.Conv2d(1, n_v, (max_len, 1))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(n_h * max_len + n_v * dim, dim)

    def encode(self, seq: Tensor) -> Tensor:
        """``[B, d]`` from ``seq`` ``[B, L']`` (left-padded to ``max_len``)."""
        if seq.shape[1] < self.max_len:
            seq = F.pad(seq, (self.max_len - seq.shape[1], 0))
        img = self.embed(seq[:, -self.max_len :]).unsqueeze(1)  # [B, 1, L, d]
        parts = [
            F.relu(conv(img).squeeze(3)).max(dim=2).values for conv in self.horizontal
        ]  # each [B, n_h]
        parts.append(self.vertical(img).flatten(1))  # [B, n_v * d]
        out: Tensor = self.out(self.drop(torch.cat(parts, dim=1)))
        return out
