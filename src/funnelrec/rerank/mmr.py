"""Maximal Marginal Relevance: trade relevance against similarity to items already chosen.

At each position the item maximising ``λ·rel_i − (1−λ)·max_{j∈selected} sim(i, j)`` is
placed, where ``rel`` is the incoming score min-max normalised per row. Similarities are
Jaccard or cosine over item tags (or categories), or cosine over fixed-length item vectors
from an item-table column. The greedy loop runs over positions; each step works on the whole
batch as ``[B, N]`` arrays, with the per-row similarity matrices ``[B, N, N]`` built once
(queries are processed in chunks of about ``SIM_BUDGET`` entries to bound memory).
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import IntArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import Padded, pad, spread, take_order
from funnelrec.rerank._similarity import (
    SetSimilarity,
    SimilarityNeeds,
    chunks,
    item_description,
    pairwise_sets,
    pairwise_vectors,
)
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class MMRParams(Params):
    """Parameters of ``mmr``.

    Attributes:
        lam: λ in ``[0, 1]``; 1 keeps the relevance order, smaller values favour diversity.
        features: item description used for similarity when ``vector_column`` is unset:
            ``tags`` (the dataset's item tags; the category when there are no tags) or
            ``category``.
        vector_column: item-table column holding one fixed-length numeric list per item
            (null = no vector); when set, similarity is the cosine of these vectors.
        similarity: ``jaccard`` or ``cosine`` over tag/category sets; ``auto`` means
            Jaccard for sets and cosine for vectors (vectors only support cosine).
        relevance: ``score`` uses the incoming scores, ``rank`` the incoming positions
            (use ``rank`` when an earlier re-ranker already changed the order).
    """

    lam: float = Field(default=0.7, ge=0.0, le=1.0)
    features: Literal["tags", "category"] = "tags"
    vector_column: str | None = None
    similarity: Literal["auto", "jaccard", "cosine"] = "auto"
    relevance: Literal["score", "rank"] = "score"

    @model_validator(mode="after")
    def _vectors_are_cosine(self) -> Self:
        if self.vector_column is not None and self.similarity == "jaccard":
            raise ValueError("similarity 'jaccard' needs tag sets; vector_column uses 'cosine'")
        return self


@RERANK.register("mmr")
class MMR(SimilarityNeeds, Reranker[MMRParams]):
    """Greedy MMR diversification of each row; items keep their incoming scores."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = MMRParams

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Store the item description: unit vectors ``[n_items, d]`` or a ``[n_items, T]``
        CSR (binary for Jaccard, row-normalised for cosine)."""
        p = self.params
        sim: SetSimilarity = "cosine" if p.similarity == "cosine" else "jaccard"
        self.vectors_, self.features_ = item_description(
            dataset, self.registered_name, vector_column=p.vector_column, features=p.features,
            similarity=sim,
        )  # fmt: skip
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        steps = min(k, view.width)
        order = np.full((candidates.batch_size, steps), -1, dtype=np.int64)
        rel = _relevance(view, candidates.scores, self.params.relevance)
        for part, chunk in chunks(view, self.vectors_.shape[1]):
            order[part] = self._greedy(chunk, rel[part], self._similarities(chunk.items), steps)
        return take_order(candidates, order)

    def _greedy(self, view: Padded, rel: F64, sims: F32, steps: int) -> IntArray:
        """MMR selection of ``steps`` items per row.

        Args:
            view: padded candidates ``[b, N]``.
            rel: ``[b, N]`` relevance in ``[0, 1]``.
            sims: ``[b, N, N]`` pairwise similarities within each row.
            steps: positions to fill.

        Returns:
            ``[b, steps]`` flat candidate positions, ``-1`` once a row is exhausted.
        """
        lam = self.params.lam
        rows = np.arange(len(rel))
        avail = view.valid.copy()
        max_sim = np.zeros_like(rel)
        order = np.full((len(rel), steps), -1, dtype=np.int64)
        for pos in range(steps):
            gain = np.where(avail, lam * rel - (1.0 - lam) * max_sim, -np.inf)
            pick = gain.argmax(axis=1)
            take = avail[rows, pick]
            order[take, pos] = view.flat[rows[take], pick[take]]
            avail[rows, pick] = False
            np.maximum(max_sim, sims[rows, pick], out=max_sim)
        return order

    def _similarities(self, items: IntArray) -> F32:
        """Pairwise similarities ``[b, N, N]`` of each row's items (0 for unknown items)."""
        if self.params.vector_column is not None:
            return pairwise_vectors(self.vectors_, items)
        # as before the refactor: "auto" on sets is the raw overlap (= Jaccard for one category)
        sim: SetSimilarity | None = "jaccard" if self.params.similarity == "jaccard" else None
        return pairwise_sets(self.features_, items, sim)


def _relevance(view: Padded, scores: npt.NDArray[np.floating], mode: str) -> F64:
    """Per-row min-max normalised relevance ``[B, N]`` (1 where a row's values are equal)."""
    if mode == "rank":
        values = -np.broadcast_to(np.arange(view.width, dtype=np.float64), view.flat.shape)
    else:
        values = spread(view, scores.astype(np.float64), 0.0)
    lo = np.where(view.valid, values, np.inf).min(axis=1, keepdims=True)
    hi = np.where(view.valid, values, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    safe_span = np.where(span > 0, span, 1.0)
    rel: F64 = np.where(span > 0, (values - lo) / safe_span, 1.0)
    return rel
