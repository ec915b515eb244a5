"""Two-tower recall: user tower (id, attributes, recent history) × item tower (id, category,
tags, content), trained with in-batch sampled softmax and log-Q correction by default.

Item attributes let items unseen in training (``add_items``) get vectors; the query's own
history makes new events count without retraining.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
import torch
from pydantic import Field

from funnelrec import needs
from funnelrec.data.dataset import Dataset
from funnelrec.index.base import FloatMatrix
from funnelrec.models.layers import EmbeddingModel
from funnelrec.models.towers import TowerSizes, TwoTower
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall
from funnelrec.registry import RECALL
from funnelrec.train.data import HistoryMode
from funnelrec.train.side_features import ItemVocab


class TwoTowerParams(EmbeddingParams):
    """``EmbeddingParams`` (default: softmax, temperature 0.1 on cosine scores) plus:

    ``hidden``: MLP sizes of both towers; ``max_history``/``history_mode``/``recent``: history
    input (see ``youtube_dnn``); ``use_user_id``/``use_history``/``use_item_id``: tower inputs;
    ``id_dropout``: share of training rows whose item id is hidden (cold-start robustness);
    ``user_columns``: user attributes (``None``: auto); ``content_column``: item-table column of
    fixed-length float lists; ``max_tags``: tags kept per item.
    """

    loss: Literal["bpr", "bce", "softmax"] = "softmax"
    temperature: float = Field(default=0.1, gt=0)
    hidden: tuple[int, ...] = ()
    max_history: int = Field(default=50, ge=1)
    history_mode: HistoryMode = "prefix"
    recent: int = Field(default=0, ge=0)
    use_user_id: bool = True
    use_history: bool = True
    use_item_id: bool = True
    id_dropout: float = Field(default=0.1, ge=0, le=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    user_columns: list[str] | None = None
    content_column: str | None = None
    max_tags: int = Field(default=16, ge=0)


@RECALL.register("two_tower")
class TwoTowerRecall(EmbeddingRecall[TwoTowerParams]):
    """Known users and users with a history are served; others get an empty row."""

    params_model = TwoTowerParams

    @classmethod
    def requires(cls, params: TwoTowerParams) -> tuple[needs.Need, ...]:
        """The ``user_columns`` and the ``content_column`` when given."""
        out = [
            needs.Need((needs.user_column(c),), "user features", "fix user_columns (null = auto)")
            for c in params.user_columns or []
        ]
        if params.content_column is not None:
            out.append(
                needs.item_columns((params.content_column,), "item vectors", "content_column")
            )
        return tuple(out)

    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "batch_size": 256,
        "threads": 1,
    }

    def _prepare(self, dataset: Dataset, user_columns: list[str] | None) -> None:
        super()._prepare(dataset, user_columns)
        p = self.params
        observed = int(np.diff(dataset.item_tags[0].indptr).max(initial=0))
        vocab = ItemVocab.fit(dataset.items, p.content_column, min(p.max_tags, observed))
        self.item_vocab_ = dataclasses.asdict(vocab)
        self._item_codes = vocab.encode(dataset.items)
        self.sizes_.update(
            n_categories=len(vocab.categories),
            n_tags=len(vocab.tags),
            max_tags=vocab.max_tags,
            content_dim=vocab.content_dim,
        )

    def _build_model(self) -> TwoTower:
        p, s = self.params, self.sizes_
        sizes = TowerSizes(**{**s, "user_cards": tuple(s["user_cards"])})
        model = TwoTower(
            sizes, p.dim, p.hidden, use_user_id=p.use_user_id, use_history=p.use_history,
            recent=p.recent, use_item_id=p.use_item_id, id_dropout=p.id_dropout,
            dropout=p.dropout, init_std=p.init_std,
        )  # fmt: skip
        codes = getattr(self, "_item_codes", None)
        if codes is not None:
            model.set_item_features(*(torch.from_numpy(c) for c in codes))
        return model

    def _after_fit(self, model: EmbeddingModel, dataset: Dataset) -> None:
        """Items never seen in training keep a random id embedding: zero it, so they are
        embedded from their attributes alone, like brand-new items."""
        assert isinstance(model, TwoTower)
        if model.item_id is not None:
            unseen = torch.from_numpy(np.flatnonzero(dataset.item_popularity == 0))
            with torch.no_grad():
                model.item_id.weight[unseen] = 0.0

    def _history(self) -> tuple[int, HistoryMode]:
        p = self.params
        return (p.max_history if p.use_history else 0), p.history_mode

    def _user_columns(self) -> list[str] | None:
        return self.params.user_columns

    def _active(self, known: BoolArray, has_history: BoolArray) -> BoolArray:
        user_side = self.params.use_user_id or self.user_feats_.shape[1] > 0
        return has_history | (known & user_side)

    def _indexable(self, data: Dataset) -> IntArray:
        """Items seen in ``data`` or with any attribute."""
        cat, tags, content = self._item_codes
        described = (cat > 0) | (tags > 0).any(axis=1) | (content != 0).any(axis=1)
        return np.flatnonzero((data.item_popularity > 0) | described).astype(np.int64)

    # -- cold-start items ----------------------------------------------------------------------
    def embed_items(self, items: pl.DataFrame) -> FloatMatrix:
        """``[n, dim]`` vectors of items described by an item table (``category``, ``tags``,
        content column), computed from their attributes alone (no item id)."""
        self.check_fitted()
        vocab = ItemVocab(**self.item_vocab_)
        cat, tags, content = (torch.from_numpy(a) for a in vocab.encode(items))
        ids = torch.full((items.height,), self.sizes_["n_items"], dtype=torch.long)
        model = self.model_
        assert isinstance(model, TwoTower)
        with torch.no_grad():
            vectors = model.eval().encode_items(ids, cat, tags, content)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)

    def add_items(self, item_idx: IntArray, items: pl.DataFrame) -> Self:
        """Make new items (dense ids ``item_idx`` ``[n]``, attributes in ``items``) retrievable."""
        self.index_.add(np.asarray(item_idx, dtype=np.int64), self.embed_items(items))
        return self

    def upsert_items(self, dataset: Dataset, item_idx: IntArray) -> None:
        """Embed upserted items the model was not trained on from their attributes and add
        them to the index (items it was trained on keep their learned vectors)."""
        self.check_fitted()
        idx = np.asarray(item_idx, dtype=np.int64)
        new = idx[idx >= self.sizes_["n_items"]]
        if len(new):
            self.add_items(new, dataset.items[new])
