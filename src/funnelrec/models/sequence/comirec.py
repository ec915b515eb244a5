"""ComiRec-SA (Cen et al., 2020): self-attentive multi-interest extraction.

``A = softmax_L(W₂ tanh(W₁ Hᵀ))`` over the (position-aware) behaviour embeddings ``H``
``[B, L, d]`` gives ``K`` attention distributions; the interests are ``Aᵀ H`` ``[B, K, d]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.models.sequence.base import RecencyPositions, SequenceEncoder, padding_mask


class ComiRecSA(SequenceEncoder):
    """``n_interests`` attention heads over the last ``max_len`` behaviours."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        *,
        n_interests: int = 4,
        hidden: int = 256,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(n_items, dim, max_len, item_category, init_std)
        self.n_interests = n_interests
        self.positions = RecencyPositions(max_len, dim, init_std)
        self.attention = nn.Sequential(
            nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, n_interests, bias=False)
        )

    def encode(self, seq: Tensor) -> Tensor:
        """``[B, K, d]`` interests."""
        items = self.embed(seq)
        scores = self.attention(items + self.positions(seq))  # [B, L, K]
        scores = scores.masked_fill(~padding_mask(seq).unsqueeze(-1), float("-inf"))
        att = torch.softmax(scores, dim=1).nan_to_num(0.0)
        return att.transpose(1, 2) @ items
