"""Matrix factorisation: one embedding per user and item, score = inner product (+ item bias)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from funnelrec.models.layers import EmbeddingModel, init_embeddings


class MatrixFactorization(EmbeddingModel):
    """``score(u, i) = p_u · q_i (+ b_i)``.

    With ``item_bias`` the bias is folded into the vectors (``[p_u, 1]`` and ``[q_i, b_i]``),
    so retrieval stays a plain inner-product search of dimension ``dim + 1``.
    """

    def __init__(
        self, n_users: int, n_items: int, dim: int, item_bias: bool = False, init_std: float = 0.1
    ) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1) if item_bias else None
        init_embeddings(self, init_std)
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)

    @property
    def out_dim(self) -> int:
        return self.user.embedding_dim + (1 if self.bias is not None else 0)

    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, out_dim]`` from ``batch["user"]`` ``[B]``."""
        vec: Tensor = self.user(batch["user"])
        if self.bias is None:
            return vec
        return torch.cat([vec, torch.ones_like(vec[:, :1])], dim=1)

    def item_vectors(self, items: Tensor) -> Tensor:
        """``[n, out_dim]`` from item ids ``[n]``."""
        vec: Tensor = self.item(items)
        if self.bias is None:
            return vec
        return torch.cat([vec, self.bias(items)], dim=1)
