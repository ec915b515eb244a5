"""Shared logic of the embedding recall channels (``mf``, ``two_tower``, ``youtube_dnn``).

``fit``: optional internal validation (``split(dataset, valid_protocol)``, early stopping on
the valid part with the project evaluator, optional refit on all data for the best number of
epochs), then every indexable item is embedded once and added to a ``VectorIndex``.
``retrieve``: user vectors for the rows that have a usable signal (known user and/or
history), one index search with the query's exclusions; other rows are empty.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.errors import ConfigError
from funnelrec.eval.protocol import evaluate, subsample_users
from funnelrec.index.base import FloatMatrix, VectorIndex
from funnelrec.index.factory import load_index, make_index
from funnelrec.models.layers import EmbeddingModel
from funnelrec.ragged import BoolArray, FloatArray, IntArray
from funnelrec.recall.base import RecallChannel
from funnelrec.stage import Params
from funnelrec.train import side_features
from funnelrec.train.data import HistoryMode, PairBatches, frequency_keep_prob
from funnelrec.train.loop import FitResult, Optimizer, ValidateFn, fit, resolve_device, seeded
from funnelrec.train.losses import Precision, RetrievalLoss, warn_if_emulated
from funnelrec.train.negatives import NegativeSampler
from funnelrec.train.sparse import sparse_supported
from funnelrec.types import Candidates, Query

_NOT_JSON = ("model_", "index_")
SPARSE_AUTO_ITEMS = 50_000  # sparse_grad=None: sparse gradients from this catalogue size on


def use_sparse(p: EmbeddingParams, n_items: int, dense_output: bool = False) -> bool:
    """Resolve ``sparse_grad`` for a catalogue of ``n_items`` (``dense_output``: the loss
    scores every item, e.g. a full softmax, so sparse gradients would not help)."""
    if p.sparse_grad is not None:
        if p.sparse_grad and not sparse_supported(p.optimizer, p.weight_decay):
            raise ConfigError(
                f"sparse_grad needs weight_decay 0 and adam/adamw/adagrad/sgd, got "
                f"{p.optimizer!r} with weight_decay {p.weight_decay}"
            )
        return p.sparse_grad
    ok = sparse_supported(p.optimizer, p.weight_decay) and not dense_output
    return ok and n_items >= SPARSE_AUTO_ITEMS


class EmbeddingParams(Params):
    """Training, loss, validation and index settings shared by the embedding channels.

    ``l2``: penalty on the batch's embeddings (RecBole-style); ``weight_decay``: optimiser's.
    ``loss``: ``bpr``/``bce`` use ``n_neg`` sampled negatives per positive (∝ pop^``neg_alpha``,
    never the user's positives); ``softmax`` uses in-batch negatives plus ``n_extra`` shared
    negatives (∝ pop^``extra_alpha``), with log-Q correction when ``log_q``; ``in_batch``:
    only the first ``in_batch`` rows' positives serve as in-batch negatives of every row
    (``None``: all of them; a few hundred keeps a step's cost per pair independent of
    ``batch_size``). ``precision``: input dtype of the softmax's big products (candidates x
    users, ``train.losses.PRECISIONS``): ``bfloat16`` is faster on CPUs with
    AVX512-BF16 or AMX, float32 accumulation, softmax and gradients (opt-in; slower on CPUs
    without it). ``subsample``:
    word2vec threshold for downsampling head items in the training data. ``early_stop``: early
    stopping on ``valid_metric`` of the internal ``valid_protocol`` split (``valid_users``
    sampled users); ``refit``: retrain on all data for the best number of epochs.
    ``threads``: torch threads while training (``None``: torch's setting). ``sparse_grad``:
    sparse gradients for the embedding tables (lazy Adam: a step's cost does not grow with the
    catalogue); ``None`` = on for catalogues of at least ``SPARSE_AUTO_ITEMS`` items when the
    optimiser allows it (no weight decay), so small catalogues train exactly as before.
    """

    dim: int = Field(default=64, ge=1)
    epochs: int = Field(default=100, ge=1)
    batch_size: int = Field(default=1024, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    l2: float = Field(default=0.0, ge=0)
    optimizer: Optimizer = "adam"
    init_std: float = Field(default=0.1, gt=0)
    loss: Literal["bpr", "bce", "softmax"] = "bpr"
    n_neg: int = Field(default=1, ge=1)
    neg_alpha: float = 0.0
    n_extra: int = Field(default=0, ge=0)
    extra_alpha: float = 0.0
    log_q: bool = True
    in_batch: int | None = Field(default=None, ge=1)
    precision: Precision = "float32"
    temperature: float = Field(default=1.0, gt=0)
    subsample: float | None = Field(default=None, gt=0)
    early_stop: bool = True
    valid_protocol: Literal["loo", "rs811"] = "loo"
    valid_metric: Literal["ndcg@10", "recall@50"] = "ndcg@10"
    valid_users: int | None = Field(default=5000, ge=1)
    patience: int = Field(default=5, ge=1)
    refit: bool = False
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    index_params: dict[str, int | float | str] = Field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    progress: bool | None = None
    threads: int | None = Field(default=None, ge=1)
    sparse_grad: bool | None = None


P = TypeVar("P", bound=EmbeddingParams)


class EmbeddingRecall(RecallChannel[P]):
    """Base class: subclasses build the model and say which rows and items are usable."""

    # -- subclass hooks ----------------------------------------------------------------------
    @abstractmethod
    def _build_model(self) -> EmbeddingModel:
        """A new (untrained) model for the fitted dataset's sizes."""

    def _history(self) -> tuple[int, HistoryMode]:
        """Most recent history items fed to the model (``0``: none) and how they are taken."""
        return 0, "prefix"

    def _user_columns(self) -> list[str] | None:
        """User-table columns used as features (``None``: auto-detect, ``[]``: none)."""
        return []

    def _active(self, known: BoolArray, has_history: BoolArray) -> BoolArray:
        """Rows that get a user vector (others get an empty candidate row)."""
        return known

    def _indexable(self, data: Dataset) -> IntArray:
        """Items put in the index: those seen in ``data`` by default."""
        return np.flatnonzero(data.item_popularity > 0).astype(np.int64)

    def _after_fit(self, model: EmbeddingModel, dataset: Dataset) -> None:
        """Adjust the trained model before items are indexed (default: nothing)."""

    def _prepare(self, dataset: Dataset, user_columns: list[str] | None) -> None:
        """Sizes and user-attribute codes (``user_columns``: ``None`` = auto, ``[]`` = none)."""
        table = dataset.users
        cols: list[str] = []
        if table is not None:
            cols = side_features.auto_user_columns(table) if user_columns is None else user_columns
            unknown = [c for c in cols if c not in table.columns]
            if unknown:
                raise ConfigError(f"user_columns {unknown} not in the users table {table.columns}")
        vocabs = [side_features.fit_vocab(table[c]) for c in cols] if table is not None else []
        self.user_columns_, self.user_vocab_ = cols, vocabs
        self.user_feats_ = (
            np.zeros((dataset.n_users, 0), dtype=np.int64)
            if table is None
            else side_features.encode_table(table, cols, vocabs)
        )
        self.sizes_: dict[str, Any] = {
            "n_users": dataset.n_users,
            "n_items": dataset.n_items,
            "user_cards": [len(v) for v in vocabs],
        }

    # -- fitting -----------------------------------------------------------------------------
    def _new_model(self) -> EmbeddingModel:
        """A freshly initialised model (initialisation seeded by ``params.seed``)."""
        with seeded(self.params.seed):
            return self._build_model()

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self._prepare(dataset, self._user_columns())
        p = self.params
        model, result = self._new_model(), None
        if p.early_stop:
            inner = split(dataset, p.valid_protocol, seed=p.seed)
            if len(inner.valid) > 0:
                result = self._train(model, inner.train, inner, p.epochs)
        if result is None or p.refit:
            epochs = p.epochs if result is None else result.best_epoch
            model = self._new_model() if result is not None else model
            refit = self._train(model, dataset, None, epochs)
            result = refit if result is None else result
        self.fit_log_ = {**_log(result), "refit": p.refit and p.early_stop}
        self.model_ = model.cpu().eval()
        self._after_fit(self.model_, dataset)
        self.index_ = self._item_index(self.model_, self._indexable(dataset), p.index)
        return self

    def _train(
        self, model: EmbeddingModel, data: Dataset, inner: Split | None, epochs: int
    ) -> FitResult:
        p = self.params
        device = resolve_device(p.device)
        batches = self._batches(data)
        keep = batches.keep_prob if batches.keep_prob is not None else 1.0
        expected = data.item_popularity * keep
        batch_prob = torch.as_tensor(expected / max(expected.sum(), 1e-12), device=device)
        extra = batches.extra_sampler
        extra_prob = None if extra is None else torch.as_tensor(extra.prob, device=device)
        validate = None if inner is None else self._validator(inner)
        warn_if_emulated(p.precision, device)
        loss = RetrievalLoss(
            p.loss, temperature=p.temperature, l2=p.l2,
            batch_prob=batch_prob.float() if p.log_q else None, extra_prob=extra_prob,
            in_batch=p.in_batch, precision=p.precision,
        )  # fmt: skip
        return fit(
            model, batches, loss,
            epochs=epochs, lr=p.lr, weight_decay=p.weight_decay, optimizer=p.optimizer,
            seed=p.seed, device=p.device, validate=validate, patience=p.patience,
            progress=p.progress, num_threads=p.threads, sparse=use_sparse(p, data.n_items),
        )  # fmt: skip

    def _batches(self, data: Dataset) -> PairBatches:
        p = self.params
        offsets, items, _ = data.sequences
        pairwise = p.loss != "softmax"
        positives = data.user_item if pairwise else None
        sampler = NegativeSampler(data.n_items, positives, data.item_popularity, p.neg_alpha)
        extra = NegativeSampler(data.n_items, None, data.item_popularity, p.extra_alpha)
        return PairBatches(
            offsets, items, p.batch_size,
            keep_prob=frequency_keep_prob(data.item_popularity, p.subsample)
            if p.subsample else None,
            max_history=self._history()[0], history_mode=self._history()[1],
            user_feats=self.user_feats_ if self.user_feats_.shape[1] else None,
            sampler=sampler if pairwise else None, n_neg=p.n_neg,
            extra_sampler=extra if not pairwise and p.n_extra else None, n_extra=p.n_extra,
        )  # fmt: skip

    def _validator(self, inner: Split) -> ValidateFn:
        """``valid_metric`` on the validation users of ``inner`` (training part indexed)."""
        p = self.params
        users = subsample_users(inner.valid_users(), p.valid_users, p.seed)
        return self._ranking_validator(inner, users, self._indexable(inner.train), "valid")

    def _ranking_validator(
        self, inner: Split, users: IntArray, indexable: IntArray, part: str
    ) -> ValidateFn:
        """``valid_metric`` of full ranking over an exact index of ``indexable`` items for
        ``users`` of ``inner``'s ``part`` (the early-stopping signal of the fit loop)."""
        metric = self.params.valid_metric

        def validate(model: nn.Module) -> float:
            assert isinstance(model, EmbeddingModel)
            index = self._item_index(model, indexable, "exact")
            result = evaluate(
                lambda q: self._search(model, index, q, q.k), inner, ks=(10, 50), part=part,
                users=users,
            )  # fmt: skip
            return result.metrics[metric]

        return validate

    # -- retrieval ---------------------------------------------------------------------------
    def _item_index(self, model: EmbeddingModel, items: IntArray, kind: str) -> VectorIndex:
        """Index of ``model``'s vectors of ``items``."""
        vectors = _item_vectors(model, items)
        params = self.params.index_params if kind == self.params.index else {}
        index = make_index(kind, vectors.shape[1], **params)
        index.add(items, vectors)
        return index

    def _retrieve(self, query: Query, k: int) -> Candidates:
        return self._search(self.model_, self.index_, query, k)

    def _search(
        self, model: EmbeddingModel, index: VectorIndex, query: Query, k: int
    ) -> Candidates:
        """Top ``k`` from ``index`` for the rows with a user vector; other rows empty."""
        batch, rows = self._query_batch(query)
        k = min(k, max(len(index), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        if len(rows):
            sub = query.select(rows)
            with torch.no_grad():
                model.eval()
                device = next(model.parameters()).device
                vecs = model.user_vectors({n: v.to(device) for n, v in batch.items()})
            found, sc = index.search(vecs.cpu().numpy(), k, sub.exclude_offsets, sub.exclude_items)
            ids[rows], scores[rows] = found, sc
        return Candidates.from_dense(ids, scores, self.channel_name)

    def _query_batch(self, query: Query) -> tuple[dict[str, Tensor], IntArray]:
        """Model inputs of the usable rows of ``query`` and the indices of those rows."""
        n_users, n_items = self.sizes_["n_users"], self.sizes_["n_items"]
        users = query.user_idx
        known = (users >= 0) & (users < n_users)
        off, items = ragged.offsets_from_lengths(np.zeros(query.batch_size)), users[:0]
        if self._history()[0] > 0:
            off, items, _ = query.recent_history(self._history()[0])
            ok = (items >= 0) & (items < n_items)
            off = ragged.offsets_from_row_ids(ragged.row_ids(off)[ok], query.batch_size)
            items = items[ok]
        rows = np.flatnonzero(self._active(known, ragged.lengths(off) > 0)).astype(np.int64)
        h_off, flat = _select(off, rows)
        feats = np.zeros((len(rows), self.user_feats_.shape[1]), dtype=np.int64)
        feats[known[rows]] = self.user_feats_[users[rows][known[rows]]]
        batch = {
            "user": torch.from_numpy(np.where(known, users, -1)[rows]),
            "hist_items": torch.from_numpy(items[flat]),
            "hist_offsets": torch.from_numpy(h_off[:-1].copy()),
            "user_feats": torch.from_numpy(feats),
        }
        return batch, rows

    # -- scoring any item (ranker features) ---------------------------------------------------
    def item_vectors(self, items: IntArray) -> FloatMatrix:
        """``[n, d]`` the model's vectors of ``items`` (unknown items: zeros)."""
        self.check_fitted()
        known = (items >= 0) & (items < self.sizes_["n_items"])
        out = np.zeros((len(items), 0), dtype=np.float32)
        vecs = _item_vectors(self.model_, items[known]) if known.any() else None
        if vecs is not None:
            out = np.zeros((len(items), vecs.shape[1]), dtype=np.float32)
            out[known] = vecs
        return out

    def score_items(self, query: Query, candidates: Candidates) -> FloatArray:
        """``[N]`` the channel's score ``<user vector, item vector>`` of every candidate, found
        by this channel or not (0 for rows without a user vector and unknown items)."""
        self.check_fitted()
        out = np.zeros(len(candidates), dtype=np.float32)
        batch, rows = self._query_batch(query)
        if len(rows) == 0 or len(candidates) == 0:
            return out
        with torch.no_grad():
            self.model_.eval()
            users = self.model_.user_vectors(batch).cpu().numpy()
        slot = np.full(query.batch_size, -1, dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        pick = slot[candidates.row_ids()]
        ok = pick >= 0
        items = self.item_vectors(candidates.item_idx[ok])
        if items.shape[1]:
            out[ok] = np.einsum("nd,nd->n", users[pick[ok]], items)
        return out

    # -- persistence -------------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        """JSON/numpy state; the torch model and the index are saved by ``_save_state``."""
        return {k: v for k, v in super().fitted_state().items() if k not in _NOT_JSON}

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        torch.save(self.model_.state_dict(), directory / "model.pt")
        self.index_.save(directory / "index")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        model = self._build_model()
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model_ = model.eval()
        self.index_ = load_index(directory / "index")


def _item_vectors(model: EmbeddingModel, items: IntArray, chunk: int = 65_536) -> FloatMatrix:
    """``[n, d]`` float32 item vectors, computed without gradients in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        parts = [
            model.item_vectors(torch.from_numpy(items[i : i + chunk]).to(device)).cpu().numpy()
            for i in range(0, max(len(items), 1), chunk)
        ]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _select(offsets: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """Offsets and flat positions of some rows of a ragged batch."""
    lens = ragged.lengths(offsets)[rows]
    new = ragged.offsets_from_lengths(lens)
    return new, np.repeat(offsets[rows], lens) + ragged.position_in_row(new)


def _log(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "epochs_run": result.epochs_run,
        "loss": [round(h.loss, 5) for h in result.history],
        "metric": [h.metric for h in result.history],
    }
