"""Light two-tower scorer for pre-ranking: ``<user vector, item vector>`` + first-order term.

The user vector sums the user-side and context field vectors and the mean of the recent
behaviours; the item vector sums the item-side field vectors; candidate-level fields
(recall provenance) enter through the first-order term only. No MLP: scoring ``C``
candidates costs one gather and one ``d``-wide dot product each.
"""

from __future__ import annotations

import torch
from torch import Tensor

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel

_USER_SIDE = ("user", "context")


class TwoTowerCTR(CTRModel):
    """``logit = linear + <Σ user-side fields (+ mean behaviour), Σ item-side fields>``."""

    user_mask: Tensor
    item_mask: Tensor

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        sources = schema.sources()
        self.register_buffer("user_mask", torch.tensor([s in _USER_SIDE for s in sources]))
        self.register_buffer("item_mask", torch.tensor([s == "item" for s in sources]))

    def score(self, batch: Batch) -> Tensor:
        fields: Tensor
        linear: Tensor
        fields, linear = self.embed(batch)
        # index_select, not boolean indexing: same sums, about 6x faster on [N, F, d]
        user = fields.index_select(1, self.user_mask.nonzero().ravel()).sum(1)
        if self.schema.seq_len > 0:  # mean behaviour, without an [N, K, d] block
            total, count = self.embed.sequence_sum(batch)
            user = user + total / count.unsqueeze(-1).clamp_min(1)
        item = fields.index_select(1, self.item_mask.nonzero().ravel()).sum(1)
        return linear + (user * item).sum(-1)
