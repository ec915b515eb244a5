"""GRU4Rec (Hidasi et al., 2016): a GRU over the item sequence, next-item prediction."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from funnelrec.models.sequence.base import SequenceEncoder, padding_mask


class GRU4Rec(SequenceEncoder):
    """Embedding → dropout → GRU (``layers``, ``hidden``) → linear to ``dim``; causal."""

    causal: ClassVar[bool] = True

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        *,
        hidden: int = 64,
        layers: int = 1,
        dropout: float = 0.2,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(n_items, dim, max_len, item_category, init_std)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, dim)

    def encode(self, seq: Tensor) -> Tensor:
        """``[B, L, d]``; padding (left) is fed as zero vectors."""
        x = self.drop(self.embed(seq))
        h, _ = self.gru(x)
        out: Tensor = self.out(h) * padding_mask(seq).unsqueeze(-1)
        return out
