"""Knowledge-graph expansion recall: TransE/RotatE embeddings of the KG (+ behaviour).

``fit`` trains a KG embedding (``models.transe``) on the item–entity triples of
``dataset.kg`` and, with ``interactions``, on ``(user, interacted, item)`` triples too, so
the behaviour signal and the KG share one space (as in CKE/KGAT). A query point blends the
user's own translated vector ``f(u, interacted)`` (weight ``blend``) with the mean vector of
the user's recent history items — the expansion: items near the user's items in KG space,
reaching items linked by the KG even without interactions. Retrieval searches an index of
``[t, -‖t‖²]`` with ``[2q, 1]``, i.e. the smallest distance ``‖q - t‖``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor, nn

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.index.base import FloatMatrix, VectorIndex
from funnelrec.index.factory import make_index
from funnelrec.models.transe import KGEmbedding, make_kge
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.recall._history import history_matrix
from funnelrec.recall._kg import KG_NEEDS, KnowledgeGraph
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.train.loop import fit, seeded
from funnelrec.train.losses import bpr_loss, embedding_l2
from funnelrec.types import Candidates, Query


class KGExpandParams(Params):
    """``model``: ``transe`` or ``rotate``; ``interactions``: add user→item triples;
    ``blend``: weight of the user's own vector against the history mean (``0``: pure
    expansion of the history); ``max_history``: recent items averaged; training: ``epochs``,
    ``batch_size``, ``lr``, ``n_neg`` corrupted tails per triple, ``l2`` on the batch's
    vectors, ``seed``, ``threads``."""

    model: Literal["transe", "rotate"] = "transe"
    dim: int = Field(default=64, ge=1)
    interactions: bool = True
    blend: float = Field(default=0.5, ge=0, le=1)
    max_history: int = Field(default=50, ge=1)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=2048, ge=2)
    lr: float = Field(default=0.01, gt=0)
    n_neg: int = Field(default=4, ge=1)
    l2: float = Field(default=1e-4, ge=0)
    init_std: float = Field(default=0.1, gt=0)
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    seed: int = 0
    progress: bool | None = None
    threads: int | None = Field(default=None, ge=1)


@RECALL.register("kg_expand")
class KGExpandRecall(RecallChannel[KGExpandParams]):
    """Served rows: known users (with ``interactions``) and users with indexed history."""

    params_model = KGExpandParams
    needs = KG_NEEDS
    example_params: ClassVar[dict[str, Any]] = {"dim": 8, "epochs": 2, "threads": 1}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        graph = KnowledgeGraph.from_dataset(dataset)
        item_node = graph.item_entity.copy()
        unlinked = np.flatnonzero(item_node < 0)
        item_node[unlinked] = graph.n_entities + np.arange(len(unlinked))
        n_nodes = graph.n_entities + len(unlinked)
        ui = sp.coo_matrix(dataset.user_item)
        r_int = graph.n_relations
        heads = [graph.heads]
        rels, tails = [graph.relations], [graph.tails]
        if p.interactions:
            heads.append(n_nodes + ui.row.astype(np.int64))
            rels.append(np.full(ui.nnz, r_int, dtype=np.int64))
            tails.append(item_node[ui.col])
        triples = np.stack([np.concatenate(heads), np.concatenate(rels), np.concatenate(tails)])
        n_total = n_nodes + (dataset.n_users if p.interactions else 0)
        with seeded(p.seed):
            model = make_kge(p.model, n_total, r_int + 1, p.dim, p.init_std)
        batches = _TripleBatches(triples, r_int, item_node, n_nodes, p.batch_size, p.n_neg)
        result = fit(
            model, batches, _loss(p.l2), epochs=p.epochs, lr=p.lr, seed=p.seed,
            progress=p.progress, num_threads=p.threads,
        )  # fmt: skip
        self.fit_log_ = {"loss": [round(h.loss, 5) for h in result.history]}
        with torch.no_grad():
            table = model.entity.weight.detach()
            self.item_vectors_ = table[torch.from_numpy(item_node)].numpy().astype(np.float32)
            users = torch.arange(dataset.n_users) + n_nodes
            if p.interactions:
                rel = torch.full((dataset.n_users,), r_int, dtype=torch.long)
                user_q = model.project(model.entity(users), rel).numpy()
            else:
                user_q = np.zeros((0, table.shape[1]), dtype=np.float32)
        self.user_queries_ = np.ascontiguousarray(user_q, dtype=np.float32)
        seen = dataset.item_popularity > 0
        self.indexed_ = np.flatnonzero(seen | (graph.item_entity >= 0)).astype(np.int64)
        self._index = self._build_index()
        return self

    # -- retrieval ---------------------------------------------------------------------------
    def _build_index(self) -> VectorIndex:
        vecs = self.item_vectors_[self.indexed_]
        aug = np.hstack([vecs, -(vecs**2).sum(axis=1, keepdims=True)]).astype(np.float32)
        index = make_index(self.params.index, aug.shape[1])
        index.add(self.indexed_, np.ascontiguousarray(aug))
        return index

    def query_points(self, query: Query) -> tuple[IntArray, FloatMatrix]:
        """Rows with a query point and their points ``[R, d]`` (user vector ⊕ history mean)."""
        p = self.params
        users = query.user_idx
        known = (users >= 0) & (users < len(self.user_queries_))
        indexed = np.zeros(len(self.item_vectors_), dtype=bool)
        indexed[self.indexed_] = True
        hist = history_matrix(query, p.max_history, len(indexed), indexed)
        hist.data[:] = 1.0
        counts = np.asarray(hist.sum(axis=1)).ravel()
        mean = (hist @ self.item_vectors_) / np.maximum(counts, 1.0)[:, None]
        has_hist = counts > 0
        w_user = np.where(known & has_hist, p.blend, known.astype(np.float64))
        point = (1.0 - w_user)[:, None] * mean
        point[known] += w_user[known, None] * self.user_queries_[users[known]]
        rows = np.flatnonzero(known | has_hist).astype(np.int64)
        return rows, np.ascontiguousarray(point[rows], dtype=np.float32)

    def _retrieve(self, query: Query, k: int) -> Candidates:
        if self._index is None:
            self._index = self._build_index()
        rows, points = self.query_points(query)
        k = min(k, max(len(self._index), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        if len(rows):
            sub = query.select(rows)
            q = np.hstack([2.0 * points, np.ones((len(rows), 1), dtype=np.float32)])
            found, sc = self._index.search(
                np.ascontiguousarray(q, dtype=np.float32), k, sub.exclude_offsets,
                sub.exclude_items,
            )  # fmt: skip
            ids[rows], scores[rows] = found, sc
        return Candidates.from_dense(ids, scores, self.channel_name)

    def score_pairs(self, query: Query, items: IntArray) -> FloatArray:
        """``-‖q_b - t_{items[b]}‖²`` for one item per query row (``-inf`` without a point)."""
        self.check_fitted()
        rows, points = self.query_points(query)
        out = np.full(query.batch_size, -np.inf, dtype=np.float32)
        vecs = self.item_vectors_[items[rows]]
        out[rows] = -((points - vecs) ** 2).sum(axis=1)
        return out

    # -- persistence ---------------------------------------------------------------------------
    _index: VectorIndex | None = None

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self._index = None


class _TripleBatches:
    """Shuffled triple batches with ``n_neg`` corrupted tails each: items for interaction
    triples (relation ``r_int``), any KG node for the others."""

    def __init__(
        self, triples: IntArray, r_int: int, item_node: IntArray, n_nodes: int,
        batch_size: int, n_neg: int,
    ) -> None:  # fmt: skip
        self.triples, self.r_int, self.item_node = triples, r_int, item_node
        self.n_nodes, self.batch_size, self.n_neg = n_nodes, batch_size, n_neg

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        order = rng.permutation(self.triples.shape[1])
        for lo in range(0, len(order), self.batch_size):
            h, r, t = self.triples[:, order[lo : lo + self.batch_size]]
            shape = (len(h), self.n_neg)
            items = self.item_node[rng.integers(0, len(self.item_node), shape)]
            nodes = rng.integers(0, self.n_nodes, shape)
            neg = np.where((r == self.r_int)[:, None], items, nodes)
            yield {
                "head": torch.from_numpy(h), "relation": torch.from_numpy(r),
                "tail": torch.from_numpy(t), "neg": torch.from_numpy(neg),
            }  # fmt: skip


def _loss(l2: float) -> Any:
    """Pairwise logistic loss on ``-‖f(h, r) - t‖²`` (true vs corrupted tails) + L2."""

    def loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        assert isinstance(model, KGEmbedding)
        h, r = batch["head"], batch["relation"]
        pos = model.score(h, r, batch["tail"])
        neg = model.score(h, r, batch["neg"])
        out = bpr_loss(pos, neg)
        if l2 > 0:
            out = out + l2 * embedding_l2(model.entity(h), model.entity(batch["tail"]))
        return out

    return loss
