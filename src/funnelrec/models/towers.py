"""Two-tower retrieval model: a user tower and an item tower meeting in one vector space.

User tower: user-id embedding + user-attribute embeddings + mean-pooled history item
embeddings → MLP → L2-normalised ``[B, d]``. Item tower: item-id embedding + category
embedding + tag bag + projected content vector → MLP → L2-normalised ``[n, d]``. With
``id_dropout`` the item id is hidden from the tower for a share of training rows, so an item
never seen in training still gets a useful vector from its attributes alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.models.layers import EmbeddingModel, init_embeddings, mlp, pool_history
from funnelrec.row_padding import batch_invariant


@dataclass(frozen=True)
class TowerSizes:
    """Vocabulary sizes the towers are built from (saved as JSON next to the weights)."""

    n_users: int
    n_items: int
    user_cards: tuple[int, ...] = ()
    n_categories: int = 0
    n_tags: int = 0
    max_tags: int = 0
    content_dim: int = 0


class TwoTower(EmbeddingModel):
    """User and item towers; ``user_vectors(batch) @ item_vectors(items).T`` are cosines."""

    item_cat: Tensor
    item_tags: Tensor
    item_content: Tensor

    def __init__(
        self,
        sizes: TowerSizes,
        dim: int,
        hidden: Sequence[int] = (),
        *,
        use_user_id: bool = True,
        use_history: bool = True,
        recent: int = 0,
        use_item_id: bool = True,
        id_dropout: float = 0.0,
        dropout: float = 0.0,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.sizes, self.recent, self.id_dropout = sizes, recent, id_dropout
        n_users, n_items = sizes.n_users, sizes.n_items
        self.user_id = nn.Embedding(n_users + 1, dim, padding_idx=n_users) if use_user_id else None
        self.user_attrs = nn.ModuleList(
            nn.Embedding(card + 1, dim, padding_idx=0) for card in sizes.user_cards
        )
        self.history = nn.Embedding(n_items, dim) if use_history else None
        self.item_id = nn.Embedding(n_items + 1, dim, padding_idx=n_items) if use_item_id else None
        self.category = (
            nn.Embedding(sizes.n_categories + 1, dim, padding_idx=0) if sizes.n_categories else None
        )
        self.tags = (
            nn.EmbeddingBag(sizes.n_tags + 1, dim, mode="mean", padding_idx=0)
            if sizes.n_tags and sizes.max_tags
            else None
        )
        self.content = nn.Linear(sizes.content_dim, dim) if sizes.content_dim else None
        self.register_buffer("item_cat", torch.zeros(n_items, dtype=torch.long))
        self.register_buffer("item_tags", torch.zeros(n_items, sizes.max_tags, dtype=torch.long))
        self.register_buffer("item_content", torch.zeros(n_items, sizes.content_dim))
        n_user = use_user_id + len(sizes.user_cards) + use_history * (1 + (recent > 0))
        item_parts = (self.item_id, self.category, self.tags, self.content)
        n_item = sum(part is not None for part in item_parts)
        if n_user == 0 or n_item == 0:
            raise ValueError("both towers need at least one input")
        self.user_mlp = mlp(n_user * dim, hidden, dim, dropout)
        self.item_mlp = mlp(n_item * dim, hidden, dim, dropout)
        init_embeddings(self, init_std)

    def set_item_features(self, category: Tensor, tags: Tensor, content: Tensor) -> None:
        """Store item attributes ``[n_items]`` / ``[n_items, max_tags]`` / ``[n_items, C]``."""
        self.item_cat.copy_(category)
        self.item_tags.copy_(tags)
        self.item_content.copy_(content)

    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, d]`` from ``user`` ``[B]`` (``-1``: unknown), ``user_feats`` ``[B, F]`` and
        the ragged history ``hist_items`` ``[H]`` / ``hist_offsets`` ``[B]``."""
        parts = []
        if self.user_id is not None:
            users = batch["user"]
            parts.append(self.user_id(torch.where(users < 0, self.sizes.n_users, users)))
        parts += [emb(batch["user_feats"][:, j]) for j, emb in enumerate(self.user_attrs)]
        if self.history is not None:
            hist, offsets = batch["hist_items"], batch["hist_offsets"]
            table = self.history
            parts.append(pool_history(table.weight, hist, offsets, self.recent, table.sparse))
        return F.normalize(batch_invariant(self.user_mlp, torch.cat(parts, dim=1)), dim=1)

    def item_vectors(self, items: Tensor) -> Tensor:
        """``[n, d]`` for item ids ``[n]`` using the stored item attributes."""
        ids = items
        if self.training and self.id_dropout > 0:
            drop = torch.rand(items.shape, device=items.device) < self.id_dropout
            ids = items.masked_fill(drop, self.sizes.n_items)
        return batch_invariant(
            self.encode_items,
            ids, self.item_cat[items], self.item_tags[items], self.item_content[items],
        )  # fmt: skip

    def encode_items(self, ids: Tensor, category: Tensor, tags: Tensor, content: Tensor) -> Tensor:
        """``[n, d]`` from explicit inputs; ``ids == n_items`` means "no id" (a new item).

        Args:
            ids: ``[n]`` item ids.
            category: ``[n]`` codes.
            tags: ``[n, max_tags]`` codes (``0`` pads).
            content: ``[n, C]`` floats.
        """
        parts = []
        if self.item_id is not None:
            parts.append(self.item_id(ids))
        if self.category is not None:
            parts.append(self.category(category))
        if self.tags is not None:
            parts.append(self.tags(tags))
        if self.content is not None:
            parts.append(self.content(content))
        return F.normalize(self.item_mlp(torch.cat(parts, dim=1)), dim=1)
