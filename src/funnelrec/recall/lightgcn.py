"""LightGCN recall: graph-smoothed user/item embeddings (BPR, shared loop), ANN retrieval.

The graph is the user–item bipartite graph of the training data; with ``kg`` the knowledge
graph's entities join it as extra nodes (item–entity and entity–entity edges), a KG-aware
LightGCN. While training, the graph holds only the training part of the internal
validation split; the final model propagates over all of ``fit``'s data.

Inductive cold start: every attribute (tag or category) gets the mean final vector of the
warm items carrying it; an item with no interactions (never seen, or upserted later) is
embedded as the mean of its attributes' vectors, rescaled to the mean norm of those warm
items — no retraining.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch
from pydantic import Field

from funnelrec import needs
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.index.base import FloatMatrix
from funnelrec.models.layers import EmbeddingModel
from funnelrec.models.lightgcn import LightGCN, normalized_adjacency
from funnelrec.ragged import IntArray
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall
from funnelrec.recall._kg import KnowledgeGraph
from funnelrec.registry import RECALL
from funnelrec.train.loop import FitResult


class LightGCNParams(EmbeddingParams):
    """``EmbeddingParams`` (BPR) plus ``n_layers`` propagation steps, ``kg`` (add the
    knowledge graph's entities as nodes) and ``cold_start`` (attribute-based vectors for
    items without interactions)."""

    n_layers: int = Field(default=2, ge=0)
    kg: bool = False
    cold_start: bool = True
    lr: float = Field(default=0.01, gt=0)
    batch_size: int = Field(default=2048, ge=2)
    l2: float = Field(default=1e-4, ge=0)


@RECALL.register("lightgcn")
class LightGCNRecall(EmbeddingRecall[LightGCNParams]):
    """Known users only (unknown users get an empty row)."""

    params_model = LightGCNParams

    @classmethod
    def requires(cls, params: LightGCNParams) -> tuple[needs.Need, ...]:
        """A knowledge graph when ``kg`` is set."""
        if not params.kg:
            return ()
        return (needs.Need((needs.KG,), "KG edges", "set kg = false or load a KG"),)

    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "batch_size": 512,
        "threads": 1,
    }

    # -- graph --------------------------------------------------------------------------
    def _prepare(self, dataset: Dataset, user_columns: list[str] | None) -> None:
        super()._prepare(dataset, user_columns)
        n_items = dataset.n_items
        item_item = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        extra = sp.csr_matrix((n_items, 0), dtype=np.float32)
        links = sp.csr_matrix((0, 0), dtype=np.float32)
        if self.params.kg:
            item_item, extra, links = _kg_blocks(KnowledgeGraph.from_dataset(dataset), n_items)
        self.item_item_, self.item_extra_, self.extra_extra_ = item_item, extra, links
        self.graph_ = self._graph(dataset)

    def _graph(self, data: Dataset) -> sp.coo_matrix:
        """Normalised adjacency of ``data``'s user–item edges plus the fixed extra blocks."""
        n_u, n_i, n_x = data.n_users, data.n_items, self.item_extra_.shape[1]
        ui = data.user_item
        blocks: list[list[Any]] = [
            [None, ui, None],
            [ui.T, self.item_item_, self.item_extra_],
            [None, self.item_extra_.T, self.extra_extra_ if n_x else None],
        ]
        if n_x == 0:
            blocks = [row[:2] for row in blocks[:2]]
        adj = sp.bmat(blocks, format="csr", dtype=np.float32)
        assert adj.shape == (n_u + n_i + n_x, n_u + n_i + n_x)
        return normalized_adjacency(adj)

    def _build_model(self) -> LightGCN:
        p, s = self.params, self.sizes_
        graph = sp.coo_matrix(self.graph_)
        return LightGCN(graph, s["n_users"], s["n_items"], p.dim, p.n_layers, p.init_std)

    def _train(
        self, model: EmbeddingModel, data: Dataset, inner: Split | None, epochs: int
    ) -> FitResult:
        """Train on ``data``'s own graph, then put the full graph back."""
        assert isinstance(model, LightGCN)
        model.set_graph(self._graph(data))
        try:
            return super()._train(model, data, inner, epochs)
        finally:
            model.set_graph(sp.coo_matrix(self.graph_))

    # -- cold start ------------------------------------------------------------------------
    def _after_fit(self, model: EmbeddingModel, dataset: Dataset) -> None:
        """Attribute vectors from the warm items; isolated items get their attributes' mean."""
        assert isinstance(model, LightGCN)
        tags, names = dataset.item_tags
        warm = dataset.item_popularity > 0
        with torch.no_grad():
            final = model.item_vectors(torch.arange(dataset.n_items)).numpy()
        weights = sp.csr_matrix(tags.T.multiply(warm[None, :].astype(np.float32)))
        counts = np.asarray(weights.sum(axis=1)).ravel()
        centroids = (weights @ final) / np.maximum(counts, 1.0)[:, None]
        self.attr_vectors_ = np.where(counts[:, None] > 0, centroids, 0.0).astype(np.float32)
        norms = np.linalg.norm(final, axis=1)
        self.attr_norms_ = ((weights @ norms) / np.maximum(counts, 1.0)).astype(np.float32)
        self.attr_names_ = list(names)
        degree = np.diff(sp.csr_matrix(self.graph_).indptr)[self.sizes_["n_users"] :]
        isolated = np.flatnonzero(degree[: dataset.n_items] == 0)
        self.cold_items_ = np.zeros(0, dtype=np.int64)
        if self.params.cold_start and len(isolated):
            vecs, ok = self._attribute_vectors(tags[isolated], self.attr_names_)
            rows = isolated[ok]
            with torch.no_grad():  # an isolated node's final vector is e0 / (n_layers + 1)
                scale = self.params.n_layers + 1
                model.embedding.weight[rows + self.sizes_["n_users"]] = torch.from_numpy(
                    vecs[ok] * scale
                )
            self.cold_items_ = rows.astype(np.int64)

    def _attribute_vectors(
        self, tags: sp.csr_matrix, names: list[str]
    ) -> tuple[FloatMatrix, npt.NDArray[np.bool_]]:
        """``[n, dim]`` mean attribute vector of items (``tags`` over ``names``) and which
        items had at least one known attribute with a vector."""
        lookup = {name: i for i, name in enumerate(self.attr_names_)}
        col_map = np.asarray([lookup.get(n, -1) for n in names], dtype=np.int64)
        coo = sp.coo_matrix(tags)
        keep = col_map[coo.col] >= 0 if len(coo.col) else np.zeros(0, dtype=bool)
        known = np.abs(self.attr_vectors_).sum(axis=1) > 0
        cols = col_map[coo.col[keep]]
        keep_known = known[cols]
        mapped = sp.csr_matrix(
            (np.ones(int(keep_known.sum()), dtype=np.float32),
             (coo.row[keep][keep_known], cols[keep_known])),
            shape=(tags.shape[0], len(self.attr_names_)),
        )  # fmt: skip
        counts = np.asarray(mapped.sum(axis=1)).ravel()
        vecs = (mapped @ self.attr_vectors_) / np.maximum(counts, 1.0)[:, None]
        # a mean of centroids is shorter than an item: give it the typical norm of the
        # attributes' warm items, so it competes in inner-product search
        norm = (mapped @ self.attr_norms_) / np.maximum(counts, 1.0)
        length = np.maximum(np.linalg.norm(vecs, axis=1), 1e-12)
        vecs = vecs * (norm / length)[:, None]
        return np.ascontiguousarray(vecs, dtype=np.float32), counts > 0

    def _indexable(self, data: Dataset) -> IntArray:
        seen = data.item_popularity > 0
        cold = getattr(self, "cold_items_", np.zeros(0, dtype=np.int64))
        seen[cold[cold < len(seen)]] = True
        return np.flatnonzero(seen).astype(np.int64)

    def embed_new_items(self, dataset: Dataset, item_idx: IntArray) -> FloatMatrix:
        """``[n, dim]`` attribute-based vectors of items of ``dataset`` (zeros without any
        known attribute)."""
        self.check_fitted()
        tags, names = dataset.item_tags
        vecs, _ = self._attribute_vectors(sp.csr_matrix(tags[item_idx]), names)
        return vecs

    def upsert_items(self, dataset: Dataset, item_idx: IntArray) -> None:
        """Index items the model was not trained on from their attributes (no retraining)."""
        self.check_fitted()
        idx = np.asarray(item_idx, dtype=np.int64)
        new = idx[idx >= self.sizes_["n_items"]]
        if len(new) and self.params.cold_start:
            vecs, ok = self._attribute_vectors(
                sp.csr_matrix(dataset.item_tags[0][new]), dataset.item_tags[1]
            )
            if ok.any():
                self.index_.add(new[ok], vecs[ok])


def _kg_blocks(
    graph: KnowledgeGraph, n_items: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Item–item, item–entity ``[n_items, n_x]`` and entity–entity ``[n_x, n_x]`` blocks,
    where the ``n_x`` extra nodes are the entities not linked to an item (linked ones are
    item nodes)."""
    extra = np.flatnonzero(graph.entity_item < 0)
    node = np.full(graph.n_entities, -1, dtype=np.int64)
    node[extra] = n_items + np.arange(len(extra))
    linked = graph.entity_item >= 0
    node[linked] = graph.entity_item[linked]
    n = n_items + len(extra)
    ones = np.ones(len(graph.heads), dtype=np.float32)
    adj = sp.csr_matrix((ones, (node[graph.heads], node[graph.tails])), shape=(n, n))
    adj = adj + adj.T
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    adj = sp.csr_matrix(adj)
    return (
        sp.csr_matrix(adj[:n_items, :n_items]),
        sp.csr_matrix(adj[:n_items, n_items:]),
        sp.csr_matrix(adj[n_items:, n_items:]),
    )
