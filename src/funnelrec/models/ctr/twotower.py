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
        user_cols, item_cols = self.user_mask.nonzero().ravel(), self.item_mask.nonzero().ravel()
        linear: Tensor
        if torch.is_grad_enabled():  # training: one lookup of every field (see below)
            fields: Tensor
            fields, linear = self.embed(batch)
            # index_select, not boolean indexing: same sums, about 6x faster on [N, F, d]
            user = fields.index_select(1, user_cols).sum(1)
            item = fields.index_select(1, item_cols).sum(1)
        else:
            # inference looks up the two sides' fields alone (candidate-level fields enter
            # through the first-order term only): the same values, bit for bit, for about a
            # quarter less work. Training keeps the single lookup, whose backward sums
            # differently (the 1e-7 differences would move every recorded pre-rank row).
            linear = self.embed.first_order(batch)
            user = self.embed.fields(batch, user_cols).sum(1)
            item = self.embed.fields(batch, item_cols).sum(1)
        if self.schema.seq_len > 0:  # mean behaviour, without an [N, K, d] block
            total, count = self.embed.sequence_sum(batch)
            user = user + total / count.unsqueeze(-1).clamp_min(1)
        return linear + (user * item).sum(-1)
