"""Building blocks shared by the embedding models: MLPs, history pooling, the model protocol."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class EmbeddingModel(nn.Module, abc.ABC):
    """Base of retrieval models: user vectors from a batch, item vectors from item ids.

    Scores are inner products ``user_vectors(batch) @ item_vectors(items).T``.
    """

    @abc.abstractmethod
    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, d]`` from the batch keys the model uses (``user``, ``hist_*``, ...)."""
        raise NotImplementedError

    @abc.abstractmethod
    def item_vectors(self, items: Tensor) -> Tensor:
        """``[n, d]`` vectors of item ids ``[n]``."""
        raise NotImplementedError


def hidden_layers(in_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> list[nn.Module]:
    """``Linear → ReLU (→ Dropout)`` per hidden size (output width ``hidden[-1]``)."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(in_dim, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = size
    return layers


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """``hidden_layers``, then a final ``Linear`` to ``out_dim``."""
    width = hidden[-1] if hidden else in_dim
    return nn.Sequential(*hidden_layers(in_dim, hidden, dropout), nn.Linear(width, out_dim))


def pool_history(
    weight: Tensor, items: Tensor, offsets: Tensor, recent: int = 0, sparse: bool = False
) -> Tensor:
    """Mean of the history items' embeddings per row (zeros for empty histories).

    Args:
        weight: ``[n_items, d]`` embedding table.
        items: ``[H]`` flat history items, oldest first within each row.
        offsets: ``[B]`` start of each row in ``items``.
        recent: when ``> 0``, also the mean of each row's last ``recent`` items, concatenated.
        sparse: sparse gradient for ``weight`` (as ``nn.EmbeddingBag(sparse=True)``).

    Returns:
        ``[B, d]`` (or ``[B, 2d]`` with ``recent``).
    """
    pooled = F.embedding_bag(items, weight, offsets, mode="mean", sparse=sparse)
    if recent <= 0:
        return pooled
    ends = torch.cat([offsets[1:], offsets.new_tensor([items.shape[0]])])
    lens = ends - offsets
    row = torch.repeat_interleave(torch.arange(len(offsets), device=items.device), lens)
    pos_from_end = ends[row] - torch.arange(items.shape[0], device=items.device) - 1
    keep = pos_from_end < recent
    new_lens = torch.clamp(lens, max=recent)
    new_off = torch.cumsum(new_lens, 0) - new_lens
    last = F.embedding_bag(items[keep], weight, new_off, mode="mean", sparse=sparse)
    return torch.cat([pooled, last], dim=1)


def init_embeddings(module: nn.Module, std: float) -> None:
    """Normal(0, ``std``) init of every embedding table in ``module`` (padding rows zeroed)."""
    for sub in module.modules():
        if isinstance(sub, nn.Embedding | nn.EmbeddingBag):
            nn.init.normal_(sub.weight, 0.0, std)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()
