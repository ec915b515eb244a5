"""DPP diversity: greedy MAP inference of a determinantal point process (Chen et al., 2018).

The kernel is ``L = diag(q) · S · diag(q)``: ``S`` is the items' cosine similarity (from item
vectors: an item-table vector column or a fitted recall channel's item embeddings; or from
tag / category sets) and ``q_i = exp(α·r_i)`` the quality, ``r`` the incoming score min-max
normalised per row. With ``α = θ / (2(1 − θ))`` maximising ``log det L_Y`` is maximising
``θ·Σ_{i∈Y} r_i + (1 − θ)·log det S_Y``: ``θ`` is the one trade-off parameter (1 keeps the
relevance order). The greedy step adds the item with the largest marginal gain
``θ·r_i + (1 − θ)·log d_i²``, where ``d_i²`` is ``i``'s residual variance given the selected
items, maintained by the incremental Cholesky update of the paper (``O(N·k)`` per step, no
determinants). Every step works on the whole batch as ``[b, N]`` arrays; once a row's kernel
is exhausted (all ``d_i² ≤ eps``, e.g. one item per category chosen) the rest follow by
relevance.
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
from funnelrec.rerank._items import Padded, pad, take_order
from funnelrec.rerank._similarity import (
    F32,
    SimilarityNeeds,
    chunks,
    description_of,
    pairwise_sets,
    pairwise_vectors,
)
from funnelrec.rerank.base import Reranker
from funnelrec.rerank.mmr import _relevance
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

F64 = npt.NDArray[np.float64]


class DPPParams(Params):
    """Parameters of ``dpp``.

    Attributes:
        theta: θ in ``[0, 1]``; 1 keeps the relevance order, smaller values favour diversity.
        features: item sets used for similarity when no vector source is set: ``tags``
            (the dataset's item tags; the category when there are no tags) or ``category``.
        vector_column: item-table column of fixed-length numeric vectors (cosine).
        channel: id of a fitted embedding recall channel (``mf``, ``two_tower``, ...) in the
            same funnel whose item embeddings give the cosine similarity.
        relevance: ``score`` uses the incoming scores, ``rank`` the incoming positions.
        jitter: added to the kernel's diagonal, ``S + jitter·I``, so low-rank similarities
            (few categories) stay positive definite.
        eps: residual variance below which a row's kernel counts as exhausted.
    """

    theta: float = Field(default=0.7, ge=0.0, le=1.0)
    features: Literal["tags", "category"] = "tags"
    vector_column: str | None = None
    channel: str | None = None
    relevance: Literal["score", "rank"] = "score"
    jitter: float = Field(default=1e-3, ge=0.0)
    eps: float = Field(default=1e-6, gt=0.0)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.vector_column is not None and self.channel is not None:
            raise ValueError("set vector_column or channel, not both")
        return self


@RERANK.register("dpp")
class DPP(SimilarityNeeds, Reranker[DPPParams]):
    """Greedy DPP MAP selection per row; items keep their incoming scores."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = DPPParams

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Unit item vectors ``[n_items, d]`` or a cosine-normalised tag CSR."""
        p = self.params
        self.vectors_, self.features_ = description_of(p, dataset, self.registered_name, ctx)
        self.use_vectors_ = p.vector_column is not None or p.channel is not None
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        steps = min(k, view.width)
        order = np.full((candidates.batch_size, steps), -1, dtype=np.int64)
        rel = _relevance(view, candidates.scores, self.params.relevance)
        for part, chunk in chunks(view, self.vectors_.shape[1]):
            sims = self.similarities(chunk.items)
            order[part] = greedy_map(chunk, rel[part], sims, steps, self.params)
        return take_order(candidates, order)

    def similarities(self, items: IntArray) -> F32:
        """Cosine similarities ``[b, N, N]`` of padded ``items[b, N]`` (0 for unknown)."""
        if self.use_vectors_:
            return pairwise_vectors(self.vectors_, items)
        return pairwise_sets(self.features_, items, "cosine")


def greedy_map(view: Padded, rel: F64, sims: F32, steps: int, p: DPPParams) -> IntArray:
    """Fast greedy MAP inference (incremental Cholesky), batched over rows.

    Args:
        view: padded candidates ``[b, N]``.
        rel: ``[b, N]`` relevance in ``[0, 1]``.
        sims: ``[b, N, N]`` similarities (diagonal 1 for items with a description).
        steps: positions to fill.

    Returns:
        ``[b, steps]`` flat candidate positions, ``-1`` once a row is exhausted.
    """
    b, n = rel.shape
    rows = np.arange(b)
    kernel = sims.astype(np.float64)
    diag = np.arange(n)
    kernel[:, diag, diag] = 1.0  # items without a description: similar only to themselves
    kernel[:, diag, diag] += p.jitter
    chol = np.zeros((b, steps, n))  # c_i: rows of the incremental Cholesky factor
    d2 = kernel[:, diag, diag].copy()  # residual variance of each item given the selection
    avail = view.valid.copy()
    order = np.full((b, steps), -1, dtype=np.int64)
    theta = p.theta
    for pos in range(steps):
        alive = np.where(avail, d2, -np.inf).max(axis=1) > p.eps
        log_d2 = np.log(np.maximum(d2, p.eps))
        gain = np.where(alive[:, None], theta * rel + (1.0 - theta) * log_d2, rel)
        pick = np.where(avail, gain, -np.inf).argmax(axis=1)
        take = avail[rows, pick]
        order[take, pos] = view.flat[rows[take], pick[take]]
        avail[rows, pick] = False
        # e_i = (L_ji − <c_j, c_i>) / d_j for the picked j; rows whose kernel is exhausted
        # (or that placed nothing) keep their factor
        upd = alive & take
        c_j = chol[rows, :pos, pick]  # [b, pos]
        dot = np.einsum("bp,bpn->bn", c_j, chol[:, :pos, :])
        d_j = np.sqrt(np.maximum(d2[rows, pick], p.eps))
        e = (kernel[rows, pick, :] - dot) / d_j[:, None]
        e = np.where(upd[:, None], e, 0.0)
        chol[:, pos, :] = e
        d2 = d2 - e**2
    return order
