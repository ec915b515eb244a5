"""EASE recall (Steck, 2019): a closed-form linear item-item model.

``fit``: with ``X`` the binary user-item matrix ``[n_users, m]``, ``P = (XᵀX + λI)⁻¹`` and
``B = I - P · diag(1 / diag(P))`` (so ``diag(B) = 0``): one regularised Gram-matrix inverse,
``O(m³)`` time and ``O(m²)`` memory. ``retrieve``: scores = the query's binary history row ×
``B``, so new users and events newer than the model count; rows without history are empty.

The model is dense over ``m`` items, so ``m`` is capped by ``max_items``: above it ``fit``
raises a ``DataError`` unless ``large = "most_popular"``, which fits EASE over the
``max_items`` most popular items only (the others are never retrieved). ``top_n`` keeps only
the ``top_n`` largest weights per item row of ``B`` (a sparse model: smaller and faster).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
from funnelrec.recall._history import history_matrix
from funnelrec.recall.base import RecallChannel, dense_topk, gather_scores
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

SCORE_CELLS = 8_000_000  # rows × items scored at once


class EASEParams(Params):
    """Parameters of ``ease``.

    Attributes:
        l2: the ridge weight ``λ`` added to the Gram matrix's diagonal.
        max_items: largest catalogue fitted exactly (memory ``≈ 16 · m²`` bytes while fitting).
        large: above ``max_items``: ``error`` (``DataError``) or ``most_popular`` (fit over the
            ``max_items`` most popular items).
        top_n: keep the ``top_n`` largest weights per row of ``B`` (``None``: dense ``B``).
        history_len: most recent query items scored (``None``: all).
        threads: BLAS threads while fitting and scoring (``None``: the process's BLAS pool,
            which the funnel's ``threads`` setting sizes).
    """

    l2: float = Field(default=500.0, gt=0)
    max_items: int = Field(default=20_000, ge=1)
    large: Literal["error", "most_popular"] = "error"
    top_n: int | None = Field(default=None, ge=1)
    history_len: int | None = Field(default=None, ge=1)
    threads: int | None = Field(default=None, ge=1)


@RECALL.register("ease")
class EASERecall(RecallChannel[EASEParams]):
    """Scores = binary history × the closed-form item-item weights ``B``."""

    params_model = EASEParams
    example_params: ClassVar[dict[str, Any]] = {"l2": 50.0, "threads": 1}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        items = self._model_items(dataset)
        x = dataset.user_item[:, items]
        with _blas_threads(p.threads):
            weights = ease_weights(x, p.l2)
        self.items_: npt.NDArray[np.int64] = items
        self.n_items_ = int(dataset.n_items)
        if p.top_n is None:
            self.weights_: npt.NDArray[np.float32] | sp.csr_matrix = weights
        else:
            self.weights_ = _prune_rows(weights, p.top_n)
        self.score_memo.clear()
        return self

    def _model_items(self, dataset: Dataset) -> npt.NDArray[np.int64]:
        """Catalogue columns of the model: the items seen in ``dataset``, or the ``max_items``
        most popular of them."""
        p, pop = self.params, dataset.item_popularity
        seen = np.flatnonzero(pop > 0).astype(np.int64)
        n = len(seen)
        if n <= p.max_items:
            return seen
        if p.large == "error":
            raise DataError(
                f"ease: the catalogue has {n} items with interactions, more than "
                f"max_items={p.max_items} (a dense {n}x{n} model needs "
                f"~{16 * n * n / 1e9:.1f} GB to fit); raise max_items or set "
                "large = 'most_popular'"
            )
        top = np.argsort(-pop, kind="stable")[: p.max_items]
        return np.sort(top).astype(np.int64)

    def scores(self, query: Query) -> npt.NDArray[np.float32]:
        """``[B, n_items]`` scores (``-inf`` for items outside the model or rows w/o history)."""
        column = np.full(self.n_items_, -1, dtype=np.int64)
        column[self.items_] = np.arange(len(self.items_))
        last = self.params.history_len or max(int(np.diff(query.history_offsets).max(initial=1)), 1)
        hist = history_matrix(query, last, self.n_items_, usable=column >= 0)
        hist.data[:] = 1.0
        x = hist[:, self.items_]
        with _blas_threads(self.params.threads):
            product = x @ self.weights_
        model = np.asarray(product.toarray() if sp.issparse(product) else product, np.float32)
        out = np.full((query.batch_size, self.n_items_), -np.inf, dtype=np.float32)
        has = np.diff(x.indptr) > 0
        out[np.ix_(has, self.items_)] = model[has]
        return out

    def score_items(self, query: Query, candidates: Candidates) -> npt.NDArray[np.float32]:
        """``[N]`` the channel's score of every candidate (0 outside the model)."""
        self.check_fitted()
        bounds, rows = candidates.offsets, candidates.row_ids()
        memo = self.score_memo.take(query)  # the retrieval's matrix for these queries
        if memo is not None:
            return gather_scores(memo, rows, candidates.item_idx)
        out = np.zeros(len(candidates), dtype=np.float32)
        step = max(1, SCORE_CELLS // max(self.n_items_, 1))
        for i in range(0, query.batch_size, step):
            j = min(i + step, query.batch_size)
            lo, hi = bounds[i], bounds[j]
            scores = self.scores(query.select(np.arange(i, j)))
            out[lo:hi] = gather_scores(scores, rows[lo:hi] - i, candidates.item_idx[lo:hi])
        return out

    def _retrieve(self, query: Query, k: int) -> Candidates:
        step = max(1, SCORE_CELLS // max(self.n_items_, 1))
        if query.batch_size <= step:
            scores = self.scores(query)
            self.score_memo.put(query, scores)  # for the score_items call that follows
            return dense_topk(scores, query, k, self.channel_name)
        subs = (
            query.select(np.arange(i, min(i + step, query.batch_size)))
            for i in range(0, query.batch_size, step)
        )
        parts = [dense_topk(self.scores(sub), sub, k, self.channel_name) for sub in subs]
        return Candidates.from_flat(
            ragged.offsets_from_lengths(np.concatenate([c.lengths() for c in parts])),
            np.concatenate([c.item_idx for c in parts]),
            np.concatenate([c.scores for c in parts]),
            self.channel_name,
        )


def _blas_threads(threads: int | None) -> AbstractContextManager[Any]:
    """BLAS pool limited to ``threads`` inside the block (``None``: left as it is)."""
    return nullcontext() if threads is None else threadpool_limits(threads, "blas")


def ease_weights(x: sp.csr_matrix, l2: float) -> npt.NDArray[np.float32]:
    """EASE's ``B`` ``[m, m]`` (float32) for a binary user-item matrix ``x`` ``[n, m]``."""
    x64 = sp.csr_matrix(x, dtype=np.float64)
    gram = (x64.T @ x64).toarray()
    gram[np.diag_indices_from(gram)] += l2
    inv = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    del gram
    inv /= -np.diag(inv)[None, :]
    inv[np.diag_indices_from(inv)] = 0.0
    out: npt.NDArray[np.float32] = inv.astype(np.float32)
    return out


def _prune_rows(weights: npt.NDArray[np.float32], top_n: int) -> sp.csr_matrix:
    """Sparse copy of ``weights`` keeping the ``top_n`` largest entries of each row."""
    m = weights.shape[0]
    keep = min(top_n, m)
    cols = np.argpartition(-weights, keep - 1, axis=1)[:, :keep]
    vals = np.take_along_axis(weights, cols, axis=1)
    rows = np.repeat(np.arange(m), keep)
    pruned = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(m, m))
    pruned.eliminate_zeros()
    return pruned
