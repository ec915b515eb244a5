"""Shared logic of the trained sequence channels (``gru4rec``, ``caser``, ``sasrec``, ``mind``,
``comirec_sa``): next-item training through ``train.loop.fit``, validation, retrieval.

Validation: the last item of every user in the fitted data is held out; the model trains on
everything before it and early-stops on NDCG@10 of that item (the project evaluator, full
ranking); ``refit`` retrains on all data for the best number of epochs. At request time the
user vector is computed from the last ``max_len`` items of the *query's* history, so events
after training count at once; a query without history gets an empty row.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import torch
from pydantic import Field

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split
from funnelrec.eval.protocol import subsample_users
from funnelrec.models.layers import EmbeddingModel
from funnelrec.models.sequence import SequenceEncoder
from funnelrec.ragged import BoolArray
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall, _log, use_sparse
from funnelrec.train.data import HistoryMode
from funnelrec.train.loop import FitResult, ValidateFn, fit, resolve_device
from funnelrec.train.losses import warn_if_emulated
from funnelrec.train.negatives import NegativeSampler
from funnelrec.train.sequence import Layout, NextItemLoss, SequenceBatches


class SequenceParams(EmbeddingParams):
    """``EmbeddingParams`` for next-item training, with these defaults and additions:

    ``loss``: ``full`` softmax over all items or ``sampled`` (batch targets + ``n_extra``
    shared negatives ∝ pop^``extra_alpha``, log-Q corrected); ``max_len``: the last K
    behaviours used; ``side_info``: add an item-category embedding to the item
    representation; ``dropout``: model dropout; ``grad_clip``: gradient norm clip.
    """

    loss: Literal["full", "sampled"] = "full"  # type: ignore[assignment]
    dim: int = Field(default=64, ge=1)
    batch_size: int = Field(default=128, ge=2)
    epochs: int = Field(default=200, ge=1)
    init_std: float = Field(default=0.02, gt=0)
    max_len: int = Field(default=50, ge=1)
    side_info: bool = False
    dropout: float = Field(default=0.2, ge=0, lt=1)
    grad_clip: float | None = Field(default=5.0, gt=0)
    n_extra: int = Field(default=1024, ge=0)
    patience: int = Field(default=5, ge=1)


S = TypeVar("S", bound=SequenceParams)
E = TypeVar("E", bound=SequenceEncoder)


class SequenceRecall(EmbeddingRecall[S]):
    """Base class: subclasses build their ``SequenceEncoder`` (``build_encoder``) and name the
    sample layout."""

    layout: Layout = "causal"
    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "max_len": 10,
        "threads": 1,
    }

    @abstractmethod
    def _build_model(self) -> EmbeddingModel:
        """A new (untrained) sequence model for the fitted dataset's sizes."""

    def _category_tensor(self) -> torch.Tensor | None:
        cats = self.item_category_
        return torch.from_numpy(cats) if len(cats) else None

    def _history(self) -> tuple[int, HistoryMode]:
        return self.params.max_len, "prefix"

    def _active(self, known: BoolArray, has_history: BoolArray) -> BoolArray:
        return has_history

    def _prepare(self, dataset: Dataset, user_columns: list[str] | None) -> None:
        super()._prepare(dataset, [])
        codes = dataset.item_categories[0].astype(np.int64)
        self.item_category_ = codes if self.params.side_info else codes[:0]

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self._prepare(dataset, [])
        p = self.params
        model, result = self._new_model(), None
        if p.early_stop:
            inner = split(dataset, "loo", seed=p.seed)
            if len(inner.test) > 0:
                result = self._train(model, inner.history, inner, p.epochs)
        if result is None or p.refit:
            epochs = p.epochs if result is None else result.best_epoch
            model = self._new_model() if result is not None else model
            refit = self._train(model, dataset, None, epochs)
            result = refit if result is None else result
        self.fit_log_ = {
            **_log(result),
            "refit": p.refit and p.early_stop,
            "epoch_s": [round(h.seconds, 2) for h in result.history],
        }
        self.model_ = model.cpu().eval()
        self.index_ = self._item_index(self.model_, self._indexable(dataset), p.index)
        return self

    def _train(
        self, model: EmbeddingModel, data: Dataset, inner: Split | None, epochs: int
    ) -> FitResult:
        p = self.params
        device = resolve_device(p.device)
        warn_if_emulated(p.precision, device)
        offsets, items, _ = data.sequences
        pop = data.item_popularity
        sampled = p.loss == "sampled" and p.n_extra > 0
        extra = NegativeSampler(data.n_items, None, pop, p.extra_alpha) if sampled else None
        batches = SequenceBatches(
            offsets, items, p.batch_size, p.max_len, self.layout, extra, p.n_extra
        )
        prob = torch.as_tensor(pop / max(pop.sum(), 1e-12), dtype=torch.float32, device=device)
        extra_prob = None if extra is None else torch.as_tensor(extra.prob, device=device)
        loss = NextItemLoss(
            p.loss, data.n_items, temperature=p.temperature,
            batch_prob=prob if p.log_q else None,
            extra_prob=None if extra_prob is None else extra_prob.float(), in_batch=p.in_batch,
            precision=p.precision,
        )  # fmt: skip
        validate = None if inner is None else self._validator(inner)
        return fit(
            model, batches, loss,  # type: ignore[arg-type]
            epochs=epochs, lr=p.lr, weight_decay=p.weight_decay, optimizer=p.optimizer,
            seed=p.seed, device=p.device, validate=validate,
            patience=p.patience, grad_clip=p.grad_clip, progress=p.progress, num_threads=p.threads,
            sparse=use_sparse(p, data.n_items, dense_output=p.loss == "full"),
        )  # fmt: skip

    def _validator(self, inner: Split) -> ValidateFn:
        """NDCG@10 (or ``valid_metric``) of each user's held-out last item."""
        p = self.params
        users = subsample_users(inner.test_users(), p.valid_users, p.seed)
        return self._ranking_validator(inner, users, self._indexable(inner.history), "test")

    def model_kwargs(self) -> dict[str, Any]:
        """Arguments every encoder takes."""
        p = self.params
        return {
            "item_category": self._category_tensor(),
            "init_std": p.init_std,
        }

    def build_encoder(self, encoder: type[E], *names: str) -> E:
        """A new ``encoder(n_items, dim, max_len, ...)`` for the fitted sizes, given the params
        called ``names`` as keywords (e.g. ``"hidden"``, ``"dropout"``) and ``model_kwargs()``."""
        p = self.params
        own = {name: getattr(p, name) for name in names}
        return encoder(self.sizes_["n_items"], p.dim, p.max_len, **own, **self.model_kwargs())
