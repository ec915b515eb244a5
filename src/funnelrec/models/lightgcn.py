"""LightGCN (He et al., 2020): embeddings smoothed over a normalised graph, layers averaged.

Nodes are users first, then items, then any extra nodes (KG entities, attributes); the final
vector of a node is the mean of its layer-0 embedding and its ``n_layers`` propagations
``Â^l E`` with ``Â = D^-1/2 A D^-1/2``. Scores are inner products of final vectors.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from funnelrec.models.layers import EmbeddingModel, init_embeddings


def normalized_adjacency(adjacency: sp.spmatrix) -> sp.coo_matrix:
    """``D^-1/2 A D^-1/2`` of a symmetric ``[n, n]`` adjacency (isolated nodes stay zero).

    The result must stay symmetric: ``LightGCN`` back-propagates with ``Â`` itself."""
    adj = sp.csr_matrix(adjacency, dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    scale = sp.diags(inv_sqrt.astype(np.float32))
    return sp.coo_matrix(scale @ adj @ scale, dtype=np.float32)


def sparse_tensor(matrix: sp.spmatrix) -> Tensor:
    """A torch CSR tensor with the values of a scipy sparse matrix."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            csr.shape,
            check_invariants=False,
        )


class _SymmetricMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``: the gradient is ``A @ grad`` (no transpose)."""

    @staticmethod
    def forward(ctx: Any, adjacency: Tensor, x: Tensor) -> Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adjacency @ grad


class LightGCN(EmbeddingModel):
    """LightGCN over a fixed graph of ``n_users + n_items + n_extra`` nodes.

    The propagated table is computed once per parameter version (the optimiser's in-place
    step bumps it), so the user and item look-ups of one training step share a single pass.
    """

    def __init__(
        self,
        adjacency: sp.coo_matrix,
        n_users: int,
        n_items: int,
        dim: int,
        n_layers: int = 2,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        if adjacency.shape[0] < n_users + n_items:
            raise ValueError(f"graph has {adjacency.shape[0]} nodes, fewer than users + items")
        self.n_users, self.n_items, self.n_layers = n_users, n_items, n_layers
        self.embedding = nn.Embedding(adjacency.shape[0], dim)
        init_embeddings(self, init_std)
        self._cache: tuple[tuple[int, int, bool, bool], Tensor] | None = None
        self.set_graph(adjacency)

    def set_graph(self, adjacency: sp.coo_matrix) -> None:
        """Replace the normalised adjacency (same nodes), e.g. a training graph by the full one."""
        if adjacency.shape[0] != self.embedding.num_embeddings:
            raise ValueError(
                f"graph has {adjacency.shape[0]} nodes, the model has "
                f"{self.embedding.num_embeddings}"
            )
        device = self.embedding.weight.device
        self.register_buffer("adjacency", sparse_tensor(adjacency).to(device), persistent=False)
        self._cache = None

    def propagate(self) -> Tensor:
        """``[n_nodes, dim]`` final vectors: mean of the layer-0 table and its propagations."""
        weight = self.embedding.weight
        key = (weight.data_ptr(), weight._version, self.training, torch.is_grad_enabled())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        layer: Tensor = weight
        total = layer
        for _ in range(self.n_layers):
            layer = _SymmetricMM.apply(self.adjacency, layer)  # type: ignore[no-untyped-call]
            total = total + layer
        out = total / (self.n_layers + 1)
        self._cache = (key, out)
        return out

    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, dim]`` from ``batch["user"]`` ``[B]``."""
        return self.propagate()[batch["user"]]

    def item_vectors(self, items: Tensor) -> Tensor:
        """``[n, dim]`` from item ids ``[n]``."""
        return self.propagate()[items + self.n_users]

    def node_vectors(self, nodes: Tensor) -> Tensor:
        """``[n, dim]`` final vectors of any nodes (users, items, extra nodes)."""
        return self.propagate()[nodes]
