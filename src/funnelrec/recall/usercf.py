"""User-CF recall: items of the users most similar to the query's history.

Every training user is a row of the binary user-item matrix, each item weighted by its inverse
user frequency and the row L2-normalised. A query's vector is built the same way from the
query's own (recency-weighted) history, so users unknown to the model and events newer than the
model count. Similarity to every training user is one sparse product; the ``n_neighbours`` best
users (never the query user themself) vote for their items with weight ``sim ** sim_power``.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.recall._cooccurrence import F64Array, recent_matrix, row_topn, sparse_topk
from funnelrec.recall.base import MatrixScoredChannel, dense_topk
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

DENSE_CELLS = 2_000_000  # batch × catalogue size below which the dense path is used


class UserCFParams(Params):
    """Parameters of ``usercf``. Defaults favour next-item prediction (recent items weigh
    more); ``benchmarks/recall.py`` overrides ``recency_decay`` to 1 for ``rs811``.

    Attributes:
        n_neighbours: most similar training users kept per query.
        item_weight: inverse user frequency of an item in the user vectors: ``"none"`` or
            ``"log"`` (``1 / log(1 + n_i)``, ``n_i`` = the item's number of users), so rare
            shared items make users more similar than blockbusters do.
        sim_power: neighbours vote with ``similarity ** sim_power`` (> 1 favours the closest).
        history_len: number of most recent query items in the query vector (``None`` = all).
        recency_decay: the ``r``-th most recent query item (0 = latest) weighs
            ``recency_decay ** r`` in the query vector.
        pop_penalty: item scores are divided by ``n_i ** pop_penalty``.
    """

    n_neighbours: int = Field(default=50, ge=1)
    item_weight: Literal["none", "log"] = "log"
    sim_power: float = Field(default=1.0, gt=0)
    history_len: int | None = Field(default=None, ge=1)
    recency_decay: float = Field(default=0.85, gt=0, le=1)
    pop_penalty: float = Field(default=0.0, ge=0)


@RECALL.register("usercf")
class UserCFRecall(MatrixScoredChannel[UserCFParams]):
    """Items liked by the nearest users (cosine over IUF-weighted user-item vectors)."""

    params_model = UserCFParams
    personalized: ClassVar[bool] = True

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Store the normalised user vectors ``users_`` and the binary ``items_`` matrix
        (both ``[n_users, n_items]``), item weights ``item_weight_`` and target factors
        ``target_weight_`` (``[n_items]``)."""
        binary = sp.csr_matrix(dataset.user_item, dtype=np.float32)
        n_per_item = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        if self.params.item_weight == "log":
            weight = 1.0 / np.log1p(np.maximum(n_per_item, 1.0))
        else:
            weight = np.ones_like(n_per_item)
        self.item_weight_ = weight.astype(np.float32)
        self.target_weight_ = np.power(np.maximum(n_per_item, 1.0), -self.params.pop_penalty)
        self.users_ = _l2_rows(binary @ sp.diags(weight)).astype(np.float32)
        self.items_ = binary
        self.__dict__.pop("_users_by_item", None)
        self.score_memo.clear()
        return self

    @functools.cached_property
    def _users_by_item(self) -> sp.csr_matrix:
        """``users_.T`` as CSR ``[n_items, n_users]`` (derived once, never saved): the
        query-to-user similarity is then one CSR product, with no per-request conversion."""
        return sp.csr_matrix(self.users_.T)

    def score_matrix(self, query: Query) -> F64Array | sp.csr_matrix:
        """``[B, n_items]`` scores from the query's nearest users (dense for small blocks,
        where non-positive scores are ``-inf``; sparse otherwise)."""
        self.check_fitted()
        p = self.params
        n_users, n_items = self.items_.shape
        recent = recent_matrix(query, n_items, p.history_len, p.recency_decay)
        vectors = _l2_rows(recent, self.item_weight_)
        if query.batch_size * max(n_users, n_items) <= DENSE_CELLS:
            return self._dense_scores(vectors, query)
        sim = sp.csr_matrix(vectors @ self._users_by_item)
        # ties at the neighbour cut all vote, as in the dense path (rows independent)
        sim = row_topn(_drop_self(sim, query.user_idx), p.n_neighbours, ties="keep")
        sim.data **= p.sim_power
        return sp.csr_matrix(sim @ self.items_ @ sp.diags(self.target_weight_))

    def _retrieve(self, query: Query, k: int) -> Candidates:
        scores = self.retrieval_scores(query)
        if sp.issparse(scores):
            return sparse_topk(scores, query, k, self.channel_name)
        return dense_topk(scores, query, k, self.channel_name)

    def _dense_scores(self, vectors: sp.csr_matrix, query: Query) -> F64Array:
        """Same scores as the sparse path with a dense ``[B, n_users]`` similarity block and
        dense ``[B, n_items]`` scores: much faster for small catalogues and request-sized
        batches (serving). The neighbours' votes are one sparse product."""
        p = self.params
        sim = np.asarray((vectors @ self._users_by_item).toarray(), dtype=np.float64)
        own = (query.user_idx >= 0) & (query.user_idx < sim.shape[1])
        sim[np.flatnonzero(own), query.user_idx[own]] = 0.0
        sim[sim < 0] = 0.0
        n = min(p.n_neighbours, sim.shape[1])
        if n < sim.shape[1]:
            cut = np.partition(sim, -n, axis=1)[:, -n][:, None]
            sim[sim < cut] = 0.0  # ties at the cut may keep a few more neighbours
        votes = sp.csr_matrix(sim**p.sim_power)
        scores = np.asarray((votes @ self.items_).toarray(), dtype=np.float64)
        scores *= self.target_weight_[None, :]
        scores[scores <= 0] = -np.inf
        return scores


def _l2_rows(mat: sp.spmatrix | sp.sparray, weight: FloatArray | None = None) -> sp.csr_matrix:
    """Rows of ``mat`` ``[R, C]`` (each column scaled by ``weight[C]`` first, when given)
    scaled to unit L2 norm (empty rows stay empty); float64 CSR."""
    csr = sp.csr_matrix(mat, dtype=np.float64, copy=True)
    if weight is not None:
        csr.data *= weight.astype(np.float64)[csr.indices]
    rows = ragged.row_ids(csr.indptr.astype(np.int64))
    norms: F64Array = np.sqrt(np.bincount(rows, csr.data * csr.data, minlength=csr.shape[0]))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    csr.data *= scale[rows]
    return csr


def _drop_self(sim: sp.csr_matrix, user_idx: IntArray) -> sp.csr_matrix:
    """Zero ``sim[b, user_idx[b]]`` (a user is not their own neighbour), ``[B, n_users]``."""
    coo = sim.tocoo()
    keep = coo.col != user_idx[coo.row]
    return sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=sim.shape, dtype=np.float64
    )
