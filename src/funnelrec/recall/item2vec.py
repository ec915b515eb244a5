"""Graph item embeddings: weighted item→item graph, random walks, skip-gram (item2vec /
DeepWalk), with side information averaged in as in EGES.

Graph: edge ``i → j`` weighted by how many users acted on ``j`` after ``i`` within
``max_gap`` steps and ``window_s`` seconds. Walks: ``walks_per_item`` weighted random walks of
``walk_length`` from every item with out-edges, all walkers stepping at once. Training: skip-
gram pairs within ``context`` positions of a walk, ``n_neg`` negatives ∝ pop^0.75, through the
shared loop. Retrieval: the normalised mean vector of the user's recent items against an
index of normalised item vectors; items outside the graph (no interactions, or upserted
later) get a vector from their category/tags alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.index.base import FloatMatrix, VectorIndex
from funnelrec.index.factory import make_index
from funnelrec.models.eges import EGES
from funnelrec.ragged import IntArray
from funnelrec.recall._history import history_matrix
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.train.loop import fit, seeded
from funnelrec.train.losses import pointwise_bce
from funnelrec.train.side_features import ItemVocab
from funnelrec.types import Candidates, Query


class Item2VecParams(Params):
    """Graph (``max_gap``, ``window_s``), walks (``walks_per_item``, ``walk_length``),
    skip-gram (``context``, ``n_neg``), model (``dim``, ``side_info``: EGES side information,
    ``max_tags``), training (``epochs``, ``batch_size``, ``lr``) and retrieval
    (``max_history``, ``index``) settings."""

    max_gap: int = Field(default=3, ge=1)
    window_s: float | None = Field(default=None, gt=0)
    walks_per_item: int = Field(default=10, ge=1)
    walk_length: int = Field(default=20, ge=2)
    context: int = Field(default=3, ge=1)
    n_neg: int = Field(default=5, ge=1)
    dim: int = Field(default=64, ge=1)
    side_info: bool = True
    max_tags: int = Field(default=8, ge=0)
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=4096, ge=2)
    lr: float = Field(default=0.02, gt=0)
    max_history: int = Field(default=20, ge=1)
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    seed: int = 0
    progress: bool | None = None
    threads: int | None = Field(default=None, ge=1)


@RECALL.register("item2vec")
class Item2VecRecall(RecallChannel[Item2VecParams]):
    """Rows with indexed history items are served; others get an empty row."""

    params_model = Item2VecParams
    example_params: ClassVar[dict[str, Any]] = {
        "dim": 8, "walks_per_item": 2, "walk_length": 6, "epochs": 1, "threads": 1,
    }  # fmt: skip

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        self.graph_ = item_graph(dataset, p.max_gap, p.window_s)
        rng = np.random.default_rng(p.seed)
        walks = random_walks(self.graph_, p.walks_per_item, p.walk_length, rng)
        centre, context = skipgram_pairs(walks, p.context)
        vocab = ItemVocab.fit(dataset.items, None, p.max_tags)
        self.vocab_ = dataclasses.asdict(vocab)
        cat, tags, _ = vocab.encode(dataset.items)
        self.sizes_ = {"n_items": dataset.n_items, "n_cat": len(vocab.categories),
                       "n_tags": len(vocab.tags)}  # fmt: skip
        with seeded(p.seed):
            model = self._build_model()
        neg_prob = np.maximum(dataset.item_popularity, 0.0) ** 0.75
        neg_prob = neg_prob / max(neg_prob.sum(), 1e-12)
        batches = _PairBatches(centre, context, cat, tags, neg_prob, p.batch_size, p.n_neg)
        result = fit(
            model, batches, _loss, epochs=p.epochs, lr=p.lr, seed=p.seed,
            progress=p.progress, num_threads=p.threads,
        )  # fmt: skip
        self.fit_log_ = {"pairs": len(centre), "loss": [round(h.loss, 5) for h in result.history]}
        self.model_ = model.eval()
        in_graph = np.diff(self.graph_.indptr) > 0
        in_graph |= np.asarray(self.graph_.sum(axis=0)).ravel() > 0
        # items outside the graph are embedded like new items: side information only
        ids = np.where(in_graph, np.arange(dataset.n_items), dataset.n_items)
        self.item_vectors_ = self._encode(ids.astype(np.int64), cat, tags)
        described = (cat > 0) | (tags > 0).any(axis=1)
        usable = in_graph | (described if p.side_info else False)
        self.indexed_ = np.flatnonzero(usable).astype(np.int64)
        self._index = None
        return self

    def _build_model(self) -> EGES:
        s, p = self.sizes_, self.params
        return EGES(s["n_items"], s["n_cat"], s["n_tags"], p.dim, p.side_info)

    def _encode(self, items: IntArray, cat: IntArray, tags: IntArray) -> FloatMatrix:
        with torch.no_grad():
            vecs = self.model_.encode(*(torch.from_numpy(a) for a in (items, cat, tags)))
            vecs = EGES.normalise(vecs)
        return np.ascontiguousarray(vecs.numpy(), dtype=np.float32)

    # -- retrieval -----------------------------------------------------------------------------
    def _get_index(self) -> VectorIndex:
        if self._index is None:
            self._index = make_index(self.params.index, self.item_vectors_.shape[1])
            self._index.add(self.indexed_, self.item_vectors_[self.indexed_])
        return self._index

    def _retrieve(self, query: Query, k: int) -> Candidates:
        index = self._get_index()
        usable = np.zeros(len(self.item_vectors_), dtype=bool)
        usable[self.indexed_] = True
        hist = history_matrix(query, self.params.max_history, len(usable), usable)
        points = np.asarray(hist @ self.item_vectors_)
        rows = np.flatnonzero(np.diff(hist.indptr) > 0).astype(np.int64)
        k = min(k, max(len(index), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        if len(rows):
            q = points[rows] / np.maximum(
                np.linalg.norm(points[rows], axis=1, keepdims=True), 1e-12
            )
            sub = query.select(rows)
            found, sc = index.search(
                np.ascontiguousarray(q, dtype=np.float32), k, sub.exclude_offsets,
                sub.exclude_items,
            )  # fmt: skip
            ids[rows], scores[rows] = found, sc
        return Candidates.from_dense(ids, scores, self.channel_name)

    def upsert_items(self, dataset: Dataset, item_idx: IntArray) -> None:
        """Embed new items from their category/tags (EGES side information) and index them."""
        self.check_fitted()
        idx = np.asarray(item_idx, dtype=np.int64)
        new = idx[idx >= self.sizes_["n_items"]]
        if not len(new) or not self.params.side_info:
            return
        cat, tags, _ = ItemVocab(**self.vocab_).encode(dataset.items[new])
        vecs = self._encode(new, cat, tags)
        grown = np.zeros((int(new.max()) + 1, vecs.shape[1]), dtype=np.float32)
        grown[: len(self.item_vectors_)] = self.item_vectors_
        grown[new] = vecs
        self.item_vectors_ = grown
        self.indexed_ = np.union1d(self.indexed_, new)
        self._get_index().add(new, vecs)

    # -- persistence -----------------------------------------------------------------------------
    _index: VectorIndex | None = None

    def fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().fitted_state().items() if k != "model_"}

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        torch.save(self.model_.state_dict(), directory / "model.pt")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        model = self._build_model()
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model_ = model.eval()
        self._index = None


def item_graph(dataset: Dataset, max_gap: int, window_s: float | None) -> sp.csr_matrix:
    """``[n_items, n_items]`` CSR: ``w[i, j]`` = number of users who acted on ``j`` within
    ``max_gap`` steps (and ``window_s`` seconds) after ``i``."""
    offsets, items, ts = dataset.sequences
    user = ragged.row_ids(offsets)
    rows, cols, users = [], [], []
    for gap in range(1, max_gap + 1):
        same = user[gap:] == user[:-gap]
        if window_s is not None:
            same &= (ts[gap:] - ts[:-gap]) <= window_s
        same &= items[gap:] != items[:-gap]
        rows.append(items[:-gap][same])
        cols.append(items[gap:][same])
        users.append(user[gap:][same])
    frame = pl.DataFrame(
        {"u": np.concatenate(users), "i": np.concatenate(rows), "j": np.concatenate(cols)}
    ).unique()
    n = dataset.n_items
    ones = np.ones(frame.height, dtype=np.float32)
    return sp.csr_matrix((ones, (frame["i"].to_numpy(), frame["j"].to_numpy())), shape=(n, n))


def random_walks(
    graph: sp.csr_matrix, per_node: int, length: int, rng: np.random.Generator
) -> IntArray:
    """``[W, length]`` weighted walks (``-1`` after a dead end) from every node with out-edges,
    ``per_node`` times; all walkers step together (one ``searchsorted`` per step)."""
    graph = sp.csr_matrix(graph)
    degree = np.diff(graph.indptr)
    starts = np.repeat(np.flatnonzero(degree > 0), per_node).astype(np.int64)
    walks = np.full((len(starts), length), -1, dtype=np.int64)
    walks[:, 0] = starts
    cum = np.cumsum(graph.data, dtype=np.float64)
    before = np.concatenate([[0.0], cum])[graph.indptr[:-1]]
    total = np.asarray(graph.sum(axis=1)).ravel()
    alive = np.ones(len(starts), dtype=bool)
    for step in range(1, length):
        cur = walks[:, step - 1]
        alive &= cur >= 0
        alive[alive] &= degree[cur[alive]] > 0
        node = cur[alive]
        target = before[node] + rng.random(len(node)) * total[node]
        pos = np.minimum(np.searchsorted(cum, target, side="right"), graph.indptr[node + 1] - 1)
        walks[alive, step] = graph.indices[pos]
    return walks


def skipgram_pairs(walks: IntArray, context: int) -> tuple[IntArray, IntArray]:
    """``(centre, context)`` item pairs within ``context`` positions of each walk."""
    centres, contexts = [], []
    for off in range(1, context + 1):
        a, b = walks[:, :-off].ravel(), walks[:, off:].ravel()
        ok = (a >= 0) & (b >= 0) & (a != b)
        centres += [a[ok], b[ok]]
        contexts += [b[ok], a[ok]]
    return np.concatenate(centres), np.concatenate(contexts)


class _PairBatches:
    """Shuffled skip-gram batches: centre item with its side information, context, negatives."""

    def __init__(
        self, centre: IntArray, ctx: IntArray, cat: IntArray, tags: IntArray,
        neg_prob: np.ndarray[Any, Any], batch_size: int, n_neg: int,
    ) -> None:  # fmt: skip
        self.centre, self.ctx, self.cat, self.tags = centre, ctx, cat, tags
        self.cdf = np.cumsum(neg_prob)
        self.batch_size, self.n_neg = batch_size, n_neg

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        order = rng.permutation(len(self.centre))
        for lo in range(0, len(order), self.batch_size):
            rows = order[lo : lo + self.batch_size]
            c = self.centre[rows]
            neg = np.searchsorted(self.cdf, rng.random((len(rows), self.n_neg)) * self.cdf[-1])
            yield {
                "item": torch.from_numpy(c),
                "category": torch.from_numpy(self.cat[c]),
                "tags": torch.from_numpy(self.tags[c]),
                "context": torch.from_numpy(self.ctx[rows]),
                "neg": torch.from_numpy(np.minimum(neg, len(self.cdf) - 1).astype(np.int64)),
            }


def _loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """Skip-gram negative sampling: BCE of centre·context (1) and centre·negatives (0)."""
    assert isinstance(model, EGES)
    centre = model.encode(batch["item"], batch["category"], batch["tags"])
    pos = (centre * model.context_vectors(batch["context"])).sum(-1)
    neg = torch.einsum("bd,bnd->bn", centre, model.context_vectors(batch["neg"]))
    return pointwise_bce(pos, neg)
