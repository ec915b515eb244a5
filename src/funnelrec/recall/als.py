"""Implicit-feedback ALS recall (Hu, Koren & Volinsky, 2008) backed by the ``implicit`` library.

``fit``: the user-item matrix (values from ``confidence``: binary, counts or ``log1p`` counts,
scaled by ``alpha`` inside implicit) is factorised by implicit's CPU ALS (confidence-weighted
least squares, L2 ``regularization``, conjugate-gradient solver when ``use_cg``). Item factors go
into a ``VectorIndex`` like every embedding channel's.

``retrieve``: a row with a usable history gets its user vector computed at request time from
that history (implicit's ``recalculate_user``: the exact closed-form least-squares fold-in
against the fitted item factors), so new users and events newer than the model change the
answer; a known user with an empty history uses the fitted user factors; other rows are empty.
Row ``i`` depends only on row ``i`` of the query (each fold-in is an independent solve).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field
from threadpoolctl import threadpool_limits

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.index.base import FloatMatrix, VectorIndex
from funnelrec.index.factory import load_index, make_index
from funnelrec.recall._history import history_matrix
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.threads import resolve_threads
from funnelrec.types import Candidates, Query


class ALSParams(Params):
    """Parameters of ``als``.

    Attributes:
        factors: latent dimension.
        regularization: L2 weight on the factors (implicit's ``regularization``).
        alpha: confidence scale: a positive entry weighs ``alpha * value``.
        confidence: ``value`` of a (user, item) entry: ``binary`` (1), ``count`` (number of
            interactions) or ``log`` (``log1p(count)``).
        iterations: ALS sweeps.
        use_cg: conjugate-gradient solver (``cg_steps`` per sweep) instead of Cholesky.
        history_len: most recent query items used by the fold-in (``None``: all).
        index, index_params: vector index of the item factors (``exact``, ``hnsw``, ``ivf``).
        seed: initialisation seed (implicit's ``random_state``).
        threads: solver threads (``None``: the funnel's ``threads`` setting, see
            ``funnelrec.threads.resolve_threads``).
    """

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.01, ge=0)
    alpha: float = Field(default=1.0, gt=0)
    confidence: Literal["binary", "count", "log"] = "binary"
    iterations: int = Field(default=15, ge=1)
    use_cg: bool = True
    cg_steps: int = Field(default=3, ge=1)
    history_len: int | None = Field(default=None, ge=1)
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    index_params: dict[str, int | float | str] = Field(default_factory=dict)
    seed: int = 0
    threads: int | None = Field(default=None, ge=1)


@RECALL.register("als")
class ALSRecall(RecallChannel[ALSParams]):
    """Implicit ALS; request-time fold-in of the query history (no per-user Python loop)."""

    params_model = ALSParams
    example_params: ClassVar[dict[str, Any]] = {"factors": 8, "iterations": 3, "threads": 1}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        matrix = self._values(interaction_counts(dataset))
        model = self._model()
        with threadpool_limits(1, "blas"):
            model.fit(matrix, show_progress=False)
        self.item_factors_: FloatMatrix = np.ascontiguousarray(model.item_factors, np.float32)
        self.user_factors_: FloatMatrix = np.ascontiguousarray(model.user_factors, np.float32)
        indexable = np.flatnonzero(dataset.item_popularity > 0).astype(np.int64)
        self.index_: VectorIndex = make_index(p.index, p.factors, **p.index_params)
        self.index_.add(indexable, self.item_factors_[indexable])
        self.model_ = model
        return self

    def _model(self) -> AlternatingLeastSquares:
        p = self.params
        with threadpool_limits(1, "blas"):  # implicit warns when BLAS is multi-threaded
            model = AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                iterations=p.iterations, use_cg=p.use_cg, calculate_training_loss=False,
                num_threads=self.n_threads, random_state=p.seed,
            )  # fmt: skip
        model.cg_steps = p.cg_steps
        return model

    @property
    def n_threads(self) -> int:
        return self.params.threads or resolve_threads()

    def _values(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Counts ``[n, n_items]`` turned into the ``confidence`` values (float32 CSR)."""
        out = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        if self.params.confidence == "binary":
            out.data[:] = 1.0
        elif self.params.confidence == "log":
            out.data = np.log1p(out.data).astype(np.float32)
        return out

    # -- retrieval ---------------------------------------------------------------------------
    def user_vectors(self, query: Query) -> tuple[FloatMatrix, npt.NDArray[np.int64]]:
        """User vectors ``[R, factors]`` of the usable rows ``[R]`` of ``query``.

        Rows with history items inside the catalogue: fold-in of that history; otherwise
        known users: their fitted factors; other rows are not returned.
        """
        n_users, n_items = self.user_factors_.shape[0], self.item_factors_.shape[0]
        last = int(ragged.lengths(query.history_offsets).max(initial=1))
        counts = history_matrix(query, self.params.history_len or max(last, 1), n_items)
        has_hist = np.diff(counts.indptr) > 0
        known = (query.user_idx >= 0) & (query.user_idx < n_users)
        rows = np.flatnonzero(has_hist | known).astype(np.int64)
        vecs = np.zeros((len(rows), self.item_factors_.shape[1]), dtype=np.float32)
        fold = has_hist[rows]
        if fold.any():
            vecs[fold] = self.fold_in(counts[rows[fold]])
        stored = rows[~fold]
        vecs[~fold] = self.user_factors_[query.user_idx[stored]]
        return vecs, rows

    def fold_in(self, counts: sp.csr_matrix) -> FloatMatrix:
        """Least-squares user vectors ``[n, factors]`` for interaction counts ``[n, n_items]``."""
        with threadpool_limits(1, "blas"):
            vecs = self.model_.recalculate_user(np.arange(counts.shape[0]), self._values(counts))
        return np.asarray(vecs, dtype=np.float32).reshape(counts.shape[0], -1)

    def item_vectors(self, items: npt.NDArray[np.int64]) -> FloatMatrix:
        """``[n, factors]`` item factors of ``items`` (unknown items: zeros)."""
        self.check_fitted()
        known = (items >= 0) & (items < self.item_factors_.shape[0])
        out = np.zeros((len(items), self.item_factors_.shape[1]), dtype=np.float32)
        out[known] = self.item_factors_[items[known]]
        return out

    def score_items(self, query: Query, candidates: Candidates) -> npt.NDArray[np.float32]:
        """``[N]`` ``<user vector, item factors>`` of every candidate (0 without a vector)."""
        self.check_fitted()
        out = np.zeros(len(candidates), dtype=np.float32)
        vecs, rows = self.user_vectors(query)
        slot = np.full(query.batch_size, -1, dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        pick = slot[candidates.row_ids()]
        ok = pick >= 0
        out[ok] = np.einsum("nd,nd->n", vecs[pick[ok]], self.item_vectors(candidates.item_idx[ok]))
        return out

    def _retrieve(self, query: Query, k: int) -> Candidates:
        vecs, rows = self.user_vectors(query)
        k = min(k, max(len(self.index_), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        if len(rows):
            sub = query.select(rows)
            ids[rows], scores[rows] = self.index_.search(
                vecs, k, sub.exclude_offsets, sub.exclude_items
            )
        return Candidates.from_dense(ids, scores, self.channel_name)

    # -- persistence -------------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        state = super().fitted_state()
        return {k: v for k, v in state.items() if k not in ("model_", "index_")}

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        self.index_.save(directory / "index")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self.index_ = load_index(directory / "index")
        model = self._model()
        model.item_factors, model.user_factors = self.item_factors_, self.user_factors_
        self.model_ = model


def interaction_counts(dataset: Dataset) -> sp.csr_matrix:
    """``[n_users, n_items]`` CSR of interaction counts (repeats summed)."""
    a = dataset.arrays
    mat = sp.csr_matrix(
        (np.ones(len(a.user_idx), dtype=np.float32), (a.user_idx, a.item_idx)),
        shape=(dataset.n_users, dataset.n_items),
    )
    mat.sum_duplicates()
    return mat
