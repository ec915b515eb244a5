"""EGES (Wang et al., 2018): item vectors that average an id embedding with side-information
embeddings (category, tags) under learned per-item attention weights, trained skip-gram style
against a separate context table. Items without an id embedding (new items) use their side
information alone, with equal weights — the cold-start path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.models.layers import init_embeddings


class EGES(nn.Module):
    """Side-information-enhanced item embeddings.

    Args:
        n_items: items with an id embedding (ids ``>= n_items`` have none).
        n_categories, n_tags: vocabulary sizes (code ``0`` = missing/padding).
        dim: vector size.
        use_side: average in the category/tag embeddings (``False``: plain item2vec).
    """

    def __init__(
        self, n_items: int, n_categories: int, n_tags: int, dim: int, use_side: bool = True,
        init_std: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__()
        self.n_items, self.use_side = n_items, use_side
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.category = nn.Embedding(n_categories + 1, dim, padding_idx=0)
        self.tag = nn.Embedding(n_tags + 1, dim, padding_idx=0)
        self.context = nn.Embedding(n_items, dim)
        self.attention = nn.Embedding(n_items + 1, 3, padding_idx=n_items)
        init_embeddings(self, init_std)
        nn.init.zeros_(self.attention.weight)

    def encode(self, items: Tensor, category: Tensor, tags: Tensor) -> Tensor:
        """``[n, dim]`` item vectors from item ids ``[n]`` (``>= n_items``: new item),
        category codes ``[n]`` and tag codes ``[n, T]``."""
        known = items < self.n_items
        ids = torch.where(known, items, torch.full_like(items, self.n_items))
        parts = [self.item(ids)]
        present = [known.float()]
        if self.use_side:
            tag_vecs = self.tag(tags)
            n_tags = (tags > 0).sum(1, keepdim=True).clamp_min(1)
            parts += [self.category(category), tag_vecs.sum(1) / n_tags]
            present += [(category > 0).float(), (tags > 0).any(1).float()]
        stack = torch.stack(parts, dim=1)
        mask = torch.stack(present, dim=1)
        logits = self.attention(ids)[:, : stack.shape[1]]
        weight = torch.exp(logits) * mask
        weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-12)
        return (weight.unsqueeze(-1) * stack).sum(1)

    def context_vectors(self, items: Tensor) -> Tensor:
        """``[n, dim]`` context (output) vectors of items ``[n]``."""
        out: Tensor = self.context(items)
        return out

    @staticmethod
    def normalise(vectors: Tensor) -> Tensor:
        return F.normalize(vectors, dim=-1)
