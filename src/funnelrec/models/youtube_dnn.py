"""YouTube-DNN candidate generation (Covington et al., 2016).

The user vector is an MLP over the mean of the watched items' input embeddings (optionally
also the mean of the last ``recent`` items) and user-attribute embeddings; items have separate
output embeddings. Trained as extreme classification with sampled softmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.models.layers import EmbeddingModel, init_embeddings, mlp, pool_history
from funnelrec.row_padding import batch_invariant


class YoutubeDNN(EmbeddingModel):
    """History pooling (+ user attributes) → MLP → user vector; item output embeddings."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        hidden: Sequence[int] = (128,),
        user_cards: Sequence[int] = (),
        *,
        recent: int = 0,
        dropout: float = 0.0,
        normalize: bool = False,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.recent, self.normalize = recent, normalize
        self.input = nn.Embedding(n_items, dim)
        self.attrs = nn.ModuleList(nn.Embedding(c + 1, dim, padding_idx=0) for c in user_cards)
        n_parts = 1 + (recent > 0) + len(user_cards)
        self.mlp = mlp(n_parts * dim, hidden, dim, dropout)
        self.output = nn.Embedding(n_items, dim)
        init_embeddings(self, init_std)

    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, d]`` from ``hist_items`` ``[H]`` / ``hist_offsets`` ``[B]`` (+ ``user_feats``)."""
        hist, offsets, table = batch["hist_items"], batch["hist_offsets"], self.input
        parts = [pool_history(table.weight, hist, offsets, self.recent, table.sparse)]
        parts += [emb(batch["user_feats"][:, j]) for j, emb in enumerate(self.attrs)]
        out = batch_invariant(self.mlp, torch.cat(parts, dim=1))
        return F.normalize(out, dim=1) if self.normalize else out

    def item_vectors(self, items: Tensor) -> Tensor:
        """``[n, d]`` output embeddings of item ids ``[n]``."""
        out = self.output(items)
        return F.normalize(out, dim=1) if self.normalize else out
