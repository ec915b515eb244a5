"""PRM (Pei et al., 2019): a Transformer over the ranked list that re-scores every item in
the context of the whole list.

Each list position gets ``[item id, tag bag, item ⊙ user, ranker scores, user]`` projected to
``dim``, plus a learned embedding of its incoming position; one or more self-attention
blocks mix the positions (padding masked) and an MLP gives a score per position. The user
vector is the mean embedding of the user's recent items (personalised, and usable for users
unseen at training time). A linear path from the ranker's scores lets the model start from
the ranker's order and learn corrections.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from funnelrec.models.layers import mlp


class PRM(nn.Module):
    """Listwise re-scorer over ``[B, L]`` lists.

    Args:
        n_items: catalogue size (item codes are ``1..n_items``, ``0`` = padding / unknown).
        n_tags: tag vocabulary size (codes ``1..n_tags``, ``0`` = padding).
        n_score_feats: number of score features per position.
        max_len: longest list (positions ``0..max_len-1``).
    """

    def __init__(
        self,
        n_items: int,
        n_tags: int,
        n_score_feats: int,
        max_len: int,
        dim: int = 32,
        heads: int = 2,
        layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.tag = nn.Embedding(n_tags + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        self.scores = nn.Linear(n_score_feats, dim)
        self.inp = nn.Linear(5 * dim, dim)
        block = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.out = mlp(dim, [dim], 1, dropout)
        self.direct = nn.Linear(n_score_feats, 1)
        nn.init.normal_(self.item.weight, std=0.05)
        nn.init.normal_(self.tag.weight, std=0.05)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Scores ``[B, L]`` (padding positions get ``-1e9``).

        Batch keys: ``items`` ``[B, L]`` codes, ``tags`` ``[B, L, T]`` codes, ``scores``
        ``[B, L, S]`` floats, ``hist`` ``[B, H]`` item codes of the user's recent items,
        ``mask`` ``[B, L]`` (true = a real item).
        """
        items, mask = batch["items"], batch["mask"]
        item = self.item(items)
        tag = _masked_mean(self.tag(batch["tags"]), batch["tags"] > 0, dim=2)
        user = _masked_mean(self.item(batch["hist"]), batch["hist"] > 0, dim=1)
        user = user.unsqueeze(1).expand_as(item)
        x = torch.cat([item, tag, item * user, self.scores(batch["scores"]), user], dim=-1)
        positions = torch.arange(items.shape[1], device=items.device)
        h = self.inp(x) + self.pos(positions).unsqueeze(0)
        h = self.encoder(h, src_key_padding_mask=~mask)
        logits: Tensor = self.out(h).squeeze(-1) + self.direct(batch["scores"]).squeeze(-1)
        return logits.masked_fill(~mask, -1e9)


def _masked_mean(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Mean of ``values`` over ``dim`` where ``mask`` (zeros when nothing is masked in)."""
    weight = mask.unsqueeze(-1).to(values.dtype)
    return (values * weight).sum(dim) / weight.sum(dim).clamp_min(1.0)
