"""GRU4Rec (Hidasi et al., 2016): a GRU over the item sequence, next-item prediction."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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
        """``[B, L, d]``; zeros at padding. Each row's GRU starts at its first real item, so
        the output never depends on how much left padding the longest row of the batch
        imposes (batch invariance). Training packs the rows by length; inference runs every
        row over the full width (a row reaches its padding only after its real items), so
        each step's product has the batch's row count whatever the lengths, and a padded
        inference batch (``user_vectors``) gives each row bit-identical outputs."""
        x = self.drop(self.embed(seq))
        mask = padding_mask(seq)
        width = seq.shape[1]
        pad = width - mask.sum(dim=1)
        cols = torch.arange(width, device=seq.device)
        first = ((cols + pad[:, None]) % width)[..., None].expand_as(x)  # real items first
        if torch.is_grad_enabled():
            packed = pack_padded_sequence(
                x.gather(1, first),
                (width - pad).clamp(min=1).cpu(),
                batch_first=True,
                enforce_sorted=False,
            )
            h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=width)
        else:
            h = self.gru(x.gather(1, first))[0]
        back = ((cols - pad[:, None]) % width)[..., None].expand(-1, -1, h.shape[-1])
        out: Tensor = self.out(h.gather(1, back)) * mask.unsqueeze(-1)
        return out
