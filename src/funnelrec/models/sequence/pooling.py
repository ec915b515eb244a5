"""Training-free user vectors from item embeddings learned elsewhere: pooling, clustering.

Both work on a padded batch of history vectors ``[B, L, d]`` with a mask ``[B, L]``
(True = real item) and are fully batched (no per-user Python loops).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

PoolMode = Literal["mean", "sum", "decay"]


def pool(vectors: Tensor, mask: Tensor, mode: PoolMode, weights: Tensor | None = None) -> Tensor:
    """``[B, d]`` mean / sum / weighted mean (``decay``: ``weights`` ``[B, L]``) of the rows."""
    m = mask.to(vectors.dtype)
    if mode == "decay":
        if weights is None:
            raise ValueError("decay pooling needs weights")
        m = m * weights
    total = (vectors * m.unsqueeze(-1)).sum(1)
    if mode == "sum":
        return total
    return total / m.sum(1, keepdim=True).clamp_min(1e-12)


def cluster(
    vectors: Tensor, mask: Tensor, n_clusters: int, iterations: int = 10
) -> tuple[Tensor, Tensor]:
    """Batched spherical k-means of each row's history vectors.

    Initialisation is deterministic farthest-point: the most recent item, then repeatedly the
    item least similar to the chosen centres. Rows with fewer distinct items get fewer
    (non-empty) clusters.

    Returns:
        centroids ``[B, K, d]`` (mean of the members' raw vectors) and their member counts
        ``[B, K]`` (``0`` = no such interest).
    """
    b, n, _ = vectors.shape
    unit = F.normalize(vectors, dim=-1)
    far = torch.full((b, n), float("inf"), device=vectors.device)
    far = far.masked_fill(~mask, float("-inf"))
    last = torch.where(mask, torch.arange(n, device=vectors.device), -1).max(1).values.clamp(0)
    chosen = [last]
    for _ in range(1, n_clusters):
        sim = (unit * unit[torch.arange(b), chosen[-1]].unsqueeze(1)).sum(-1)
        far = torch.minimum(far, 1 - sim)
        chosen.append(far.argmax(1))
    centres = unit[torch.arange(b).unsqueeze(1), torch.stack(chosen, 1)]  # [B, K, d]
    for _ in range(iterations):
        assign = _assign(unit, centres, mask, n_clusters)
        centres = F.normalize(assign.transpose(1, 2) @ unit, dim=-1)
    assign = _assign(unit, centres, mask, n_clusters)
    counts = assign.sum(1)
    centroids = assign.transpose(1, 2) @ vectors / counts.clamp_min(1).unsqueeze(-1)
    return centroids, counts


def _assign(unit: Tensor, centres: Tensor, mask: Tensor, k: int) -> Tensor:
    """``[B, L, K]`` one-hot nearest-centre assignment of the real items."""
    nearest = (unit @ centres.transpose(1, 2)).argmax(-1)
    return F.one_hot(nearest, k).to(unit.dtype) * mask.unsqueeze(-1).to(unit.dtype)
