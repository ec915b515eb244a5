"""User-interest encoders over the behaviour sequence.

Long-term interest is the user-id embedding (an ordinary sparse field). Short-term interest
is one vector from the last ``K`` behaviours: the masked mean, plus (``gru``) a GRU's state
after the newest item or (``transformer``) a Transformer encoder layer's output at the newest
position. Keeping the mean as a residual path makes the order-aware encoders start from (and
not fall below) the bag-of-items summary on small data. Sequences are right-aligned: position
``K-1`` holds the newest behaviour, padding is on the left.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ShortTermInterest(nn.Module):
    """``(seq [N, K, d], mask [N, K]) -> [N, d]`` with ``kind`` in mean / gru / transformer."""

    def __init__(self, kind: str, dim: int, seq_len: int, heads: int = 2) -> None:
        super().__init__()
        if kind not in ("mean", "gru", "transformer"):
            raise ValueError(f"unknown interest encoder {kind!r}; known: mean, gru, transformer")
        self.kind = kind
        self.gru = nn.GRU(dim, dim, batch_first=True) if kind == "gru" else None
        self.position = nn.Parameter(torch.zeros(seq_len, dim)) if kind == "transformer" else None
        self.encoder = (
            nn.TransformerEncoderLayer(
                dim, _divisor(dim, heads), 2 * dim, dropout=0.0, batch_first=True
            )
            if kind == "transformer"
            else None
        )

    def forward(self, seq: Tensor, mask: Tensor) -> Tensor:
        weights = mask.unsqueeze(-1).to(seq.dtype)
        mean = (seq * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        has_any = mask[:, -1:].to(seq.dtype)
        if self.gru is not None:
            out: Tensor = self.gru(seq)[0]
            return mean + out[:, -1] * has_any
        if self.encoder is not None and self.position is not None:
            # a row without any behaviour attends to its (zero) newest slot only
            pad = ~mask
            pad[:, -1] = False
            enc: Tensor = self.encoder(seq + self.position, src_key_padding_mask=pad)
            return mean + enc[:, -1] * has_any
        return mean


def _divisor(dim: int, heads: int) -> int:
    """Largest head count ``<= heads`` that divides ``dim``."""
    return max(h for h in range(1, heads + 1) if dim % h == 0)
