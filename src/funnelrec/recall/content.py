"""Content recall: items whose content vectors are closest to the user's recent history.

Every catalogue item with content (text of ``text_columns`` through a registered encoder,
with a content-hash cache, or a precomputed ``vector_column`` of the item table) gets a unit
vector, optionally PCA-reduced; interactions play no part, so brand-new items are served
from their first upsert on (``Funnel.upsert_items``). A user is the (recency-weighted) mean of
the vectors of the last ``history`` items of the query; scores are cosine similarities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import scipy.sparse as sp
from pydantic import Field

from funnelrec import needs, ragged
from funnelrec.content.cache import VectorCache
from funnelrec.content.extract import extract, item_texts
from funnelrec.content.reduce import PCAReducer
from funnelrec.content.registry import ContentEncoder, F32Matrix, create_encoder
from funnelrec.content.store import vector_column
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.index.base import VectorIndex
from funnelrec.index.factory import make_index
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


def _default_text_columns() -> list[str]:
    return ["title", "tags"]


class ContentParams(Params):
    """Parameters of ``content`` recall.

    Attributes:
        vector_column: item-table column of precomputed vectors (fixed-length lists); when
            set, no encoder runs and ``text_columns``/``encoder`` are ignored.
        text_columns: item-table columns whose non-null values form each item's text.
        encoder, encoder_params: a registered content encoder (``content.registry``).
        cache_dir: ``VectorCache`` root (``None``: no cache, every fit encodes every item).
        pca_dim: reduce the vectors to this many principal components (``None``: keep).
        history: the last this many history items define the user.
        half_life: weight ``0.5 ** (age / half_life)`` for the item ``age`` positions before
            the newest (``None``: plain mean).
        index, index_params: ``VectorIndex`` kind (``exact`` reference, Faiss ``hnsw``/``ivf``).
        batch_size, progress: extraction batch size and progress bar (``None``: on a terminal).
    """

    vector_column: str | None = None
    text_columns: list[str] = Field(default_factory=_default_text_columns)
    encoder: str = "minilm"
    encoder_params: dict[str, Any] = Field(default_factory=dict)
    cache_dir: str | None = None
    pca_dim: int | None = Field(default=None, ge=1)
    history: int = Field(default=20, ge=1)
    half_life: float | None = Field(default=None, gt=0)
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    index_params: dict[str, int | float | str] = Field(default_factory=dict)
    batch_size: int = Field(default=256, ge=1)
    progress: bool | None = None
    seed: int = 0


@RECALL.register("content")
class ContentRecall(RecallChannel[ContentParams]):
    """Content-similarity recall; users without usable history get an empty row.

    Fitted state: ``vectors_`` ``[n_items, d]`` unit vectors (zero rows: no content),
    ``has_vector_`` ``[n_items]``, ``pca_mean_``/``pca_components_`` (empty without PCA),
    ``extract_log_`` (the last ``ExtractReport``).
    """

    params_model = ContentParams

    @classmethod
    def requires(cls, params: ContentParams) -> tuple[needs.Need, ...]:
        """The ``vector_column``, else one of the ``text_columns``."""
        if params.vector_column is not None:
            return (needs.item_columns((params.vector_column,), "item vectors", "vector_column"),)
        return (needs.item_columns(tuple(params.text_columns), "item text", "text_columns"),)

    example_params: ClassVar[dict[str, Any]] = {
        "encoder": "hashing",
        "encoder_params": {"dim": 64},
        "pca_dim": 16,
    }

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        raw, valid = self._raw_vectors(dataset.items)
        p = self.params
        self.pca_mean_ = np.zeros(0, dtype=np.float32)
        self.pca_components_ = np.zeros((0, 0), dtype=np.float32)
        if p.pca_dim is not None:
            reducer = PCAReducer.fit(raw[valid], p.pca_dim, p.seed)
            self.pca_mean_, self.pca_components_ = reducer.mean, reducer.components
        self.vectors_, self.has_vector_ = self._finish(raw, valid)
        self.index_ = self._build_index()
        return self

    def upsert_items(self, dataset: Dataset, item_idx: IntArray) -> None:
        """Encode the upserted items (unchanged contents come from the cache) and index them."""
        self.check_fitted()
        idx = np.asarray(item_idx, dtype=np.int64)
        grow = dataset.n_items - len(self.vectors_)
        if grow > 0:
            pad = np.zeros((grow, self.vectors_.shape[1]), dtype=np.float32)
            self.vectors_ = np.concatenate([self.vectors_, pad])
            self.has_vector_ = np.concatenate([self.has_vector_, np.zeros(grow, dtype=bool)])
        if len(idx) == 0:
            return
        vectors, valid = self._finish(*self._raw_vectors(dataset.items[idx]))
        self.vectors_[idx], self.has_vector_[idx] = vectors, valid
        if valid.any():
            self.index_.add(idx[valid], vectors[valid])

    # -- vectors -----------------------------------------------------------------------------
    def _raw_vectors(self, items: pl.DataFrame) -> tuple[F32Matrix, BoolArray]:
        """``[n, D]`` encoder (or column) vectors of item rows and which rows have content."""
        p = self.params
        if p.vector_column is not None:
            return vector_column(items, p.vector_column)
        texts = item_texts(items, p.text_columns)
        encoder = self._get_encoder()
        cache = None
        if p.cache_dir is not None:
            cache = VectorCache(p.cache_dir, encoder.fingerprint, encoder.dim)
        vectors, report = extract(texts, encoder, cache, p.batch_size, p.progress)
        self.extract_log_ = report.to_dict()
        return vectors, np.asarray([t != "" for t in texts], dtype=bool)

    def _get_encoder(self) -> ContentEncoder:
        if getattr(self, "_encoder", None) is None:
            self._encoder = create_encoder(self.params.encoder, self.params.encoder_params)
        return self._encoder

    def _finish(self, raw: F32Matrix, valid: BoolArray) -> tuple[F32Matrix, BoolArray]:
        """PCA (when fitted) and unit length; rows without content or of zero norm → 0."""
        vectors = raw
        if self.pca_components_.size:
            vectors = PCAReducer(self.pca_mean_, self.pca_components_).transform(raw)
        norms = np.linalg.norm(vectors, axis=1)
        valid = valid & (norms > 1e-12)
        out = np.where(valid[:, None], vectors / np.maximum(norms, 1e-12)[:, None], 0.0)
        return np.ascontiguousarray(out, dtype=np.float32), valid

    def _build_index(self) -> VectorIndex:
        p = self.params
        index = make_index(p.index, max(self.vectors_.shape[1], 1), **p.index_params)
        items = np.flatnonzero(self.has_vector_).astype(np.int64)
        if len(items):
            index.add(items, self.vectors_[items])
        return index

    # -- retrieval ---------------------------------------------------------------------------
    def user_vectors(self, query: Query) -> tuple[F32Matrix, BoolArray]:
        """``[B, d]`` unit user vectors and ``[B]`` which rows have one (a history item with
        content)."""
        off, items, _ = query.recent_history(self.params.history)
        rows = ragged.row_ids(off)
        age = (ragged.lengths(off) - 1)[rows] - ragged.position_in_row(off)
        known = (items >= 0) & (items < len(self.vectors_))
        known[known] = self.has_vector_[items[known]]
        hl = self.params.half_life
        weight = np.ones(len(items)) if hl is None else np.exp2(-age / hl)
        mat = sp.csr_matrix(
            (weight[known], (rows[known], items[known])),
            shape=(query.batch_size, len(self.vectors_)),
        )
        users = np.asarray(mat @ self.vectors_, dtype=np.float32)
        norms = np.linalg.norm(users, axis=1)
        active = norms > 1e-12
        users[active] /= norms[active, None]
        return users, active

    def _retrieve(self, query: Query, k: int) -> Candidates:
        users, active = self.user_vectors(query)
        k = min(k, max(len(self.index_), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        rows = np.flatnonzero(active).astype(np.int64)
        if len(rows) and len(self.index_):
            sub = query.select(rows)
            found, sc = self.index_.search(users[rows], k, sub.exclude_offsets, sub.exclude_items)
            ids[rows], scores[rows] = found, sc
        return Candidates.from_dense(ids, scores, self.channel_name)

    # -- persistence -------------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().fitted_state().items() if k != "index_"}

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self.has_vector_ = self.has_vector_.astype(bool)
        self.index_ = self._build_index()
