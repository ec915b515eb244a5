"""Maximal Marginal Relevance: trade relevance against similarity to items already chosen.

At each position the item maximising ``λ·rel_i − (1−λ)·max_{j∈selected} sim(i, j)`` is
placed, where ``rel`` is the incoming score min-max normalised per row. Similarities are
Jaccard or cosine over item tags (or categories), or cosine over fixed-length item vectors
from an item-table column. The greedy loop runs over positions; each step works on the whole
batch as ``[B, N]`` arrays, with the per-row similarity matrices ``[B, N, N]`` built once
(queries are processed in chunks of about ``SIM_BUDGET`` entries to bound memory).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from pydantic import Field, model_validator

from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
from funnelrec.ragged import IntArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import Padded, item_column, pad, spread, take_order
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

SIM_BUDGET = 1 << 22  # float32 entries of [b, N, N] per chunk (16 MiB)
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
class MMR(Reranker[MMRParams]):
    """Greedy MMR diversification of each row; items keep their incoming scores."""

    params_model = MMRParams

    def fit(self, dataset: Dataset) -> Self:
        """Store the item description: unit vectors ``[n_items, d]`` or a ``[n_items, T]``
        CSR (binary for Jaccard, row-normalised for cosine)."""
        p = self.params
        if p.vector_column is not None:
            self.vectors_ = _unit_vectors(
                item_column(dataset, p.vector_column, self.registered_name)
            )
            self.features_ = sp.csr_matrix((dataset.n_items, 0), dtype=np.float32)
            return self
        self.vectors_ = np.zeros((dataset.n_items, 0), dtype=np.float32)
        feats = dataset.item_tags[0] if p.features == "tags" else _one_hot(dataset)
        feats = sp.csr_matrix(feats, dtype=np.float32)
        if p.similarity == "cosine":
            norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
            feats = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ feats)
        self.features_ = feats
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        steps = min(k, view.width)
        order = np.full((candidates.batch_size, steps), -1, dtype=np.int64)
        rel = _relevance(view, candidates.scores, self.params.relevance)
        per_row = view.width * max(view.width, self.vectors_.shape[1])
        chunk_rows = max(1, SIM_BUDGET // per_row)
        for lo in range(0, candidates.batch_size, chunk_rows):
            part = slice(lo, lo + chunk_rows)
            chunk = Padded(view.flat[part], view.items[part], view.valid[part])
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
        b, n = items.shape
        known = (items >= 0) & (items < self.features_.shape[0])
        safe = np.where(known, items, 0)
        if self.params.vector_column is not None:
            vecs = self.vectors_[safe] * known[..., None]
            dots: F32 = np.matmul(vecs, vecs.transpose(0, 2, 1)).astype(np.float32)
            return dots
        feats = sp.csr_matrix(
            sp.diags(known.ravel().astype(np.float32)) @ self.features_[safe.ravel()]
        )
        n_feat = feats.shape[1]
        row_of_entry = np.repeat(np.arange(b * n) // n, np.diff(feats.indptr))
        shifted = sp.csr_matrix(
            (feats.data, feats.indices + row_of_entry * n_feat, feats.indptr),
            shape=(b * n, b * n_feat),
        )
        gram = (shifted @ shifted.T).tocoo()
        values = gram.data
        if self.params.similarity == "jaccard":
            sizes = np.asarray(feats.sum(axis=1)).ravel()
            values = values / np.maximum(sizes[gram.row] + sizes[gram.col] - values, 1e-12)
        sims = np.zeros(b * n * n, dtype=np.float32)
        sims[gram.row.astype(np.int64) * n + gram.col % n] = values  # row b*n+i, col b*n+j
        return sims.reshape(b, n, n)


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


def _one_hot(dataset: Dataset) -> sp.csr_matrix:
    """``[n_items, n_categories]`` binary CSR of item categories (no entry when missing)."""
    codes, names = dataset.item_categories
    rows = np.flatnonzero(codes >= 0)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, codes[rows])), shape=(len(codes), len(names)))


def _unit_vectors(values: pl.Series) -> npt.NDArray[np.float32]:
    """Fixed-length list column → unit-norm ``[n, d]`` float32 (nulls → zero vectors)."""
    try:
        values = values.cast(pl.List(pl.Float32))
    except pl.exceptions.PolarsError:
        raise DataError(
            f"vector column {values.name!r} ({values.dtype}) is not a list of numbers"
        ) from None
    present = values.is_not_null().to_numpy()
    lens = values.list.len().filter(values.is_not_null()).unique().to_list()
    if len(lens) > 1:
        raise DataError(f"vector column {values.name!r} has vectors of lengths {sorted(lens)}")
    dim = int(lens[0]) if lens else 0
    out = np.zeros((len(values), dim), dtype=np.float32)
    flat = values.filter(values.is_not_null()).explode().fill_null(0.0).to_numpy()
    out[present] = flat.reshape(-1, dim) if dim else out[present]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
