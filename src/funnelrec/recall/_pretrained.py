"""Base of the training-free channels over item embeddings learned elsewhere.

``fit`` trains the ``source`` embedding channel (``mf`` by default, any channel with an
``EmbeddingModel``: ``two_tower``, ``youtube_dnn``, ``sasrec``...), takes its item vectors
(L2-normalised when ``normalize``) and indexes them. At request time the query's last
``max_len`` items are looked up as a padded batch ``[B, L, d]``; subclasses turn that into
one or several user vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.index.factory import make_index
from funnelrec.ragged import IntArray
from funnelrec.recall._embedding import EmbeddingRecall, _item_vectors
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Query


class PretrainedParams(Params):
    """``source``/``source_params``: the channel whose item embeddings are used;
    ``normalize``: L2-normalise them; ``max_len``: the last K behaviours used."""

    source: str = "mf"
    source_params: dict[str, Any] = Field(default_factory=dict)
    normalize: bool = True
    max_len: int = Field(default=50, ge=1)
    index: Literal["exact", "hnsw", "ivf"] = "exact"
    index_params: dict[str, int | float | str] = Field(default_factory=dict)


P = TypeVar("P", bound=PretrainedParams)


class PretrainedItemRecall(RecallChannel[P]):
    """Holds ``item_vectors_`` ``[n_items, d]`` and their index."""

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        source = RECALL.create(p.source, p.source_params).fit(dataset)
        if not isinstance(source, EmbeddingRecall):
            raise ConfigError(
                f"source {p.source!r} has no item embeddings; use an embedding channel "
                "(mf, two_tower, youtube_dnn, sasrec, gru4rec, ...)"
            )
        vecs = _item_vectors(source.model_, np.arange(dataset.n_items, dtype=np.int64))
        if p.normalize:
            vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        self.item_vectors_ = np.ascontiguousarray(vecs, dtype=np.float32)
        self.indexable_ = np.flatnonzero(dataset.item_popularity > 0).astype(np.int64)
        self._build_index()
        return self

    def _build_index(self) -> None:
        p = self.params
        self._index = make_index(p.index, self.item_vectors_.shape[1], **p.index_params)
        self._index.add(self.indexable_, self.item_vectors_[self.indexable_])

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self._build_index()

    def history_batch(
        self, query: Query
    ) -> tuple[IntArray, torch.Tensor, torch.Tensor, npt.NDArray[np.float64]]:
        """Rows with a usable history, their vectors ``[R, L, d]``, mask ``[R, L]`` and
        the age of each behaviour ``[R, L]`` in seconds (``now - ts``; padding ``0``)."""
        off, items, ts = query.recent_history(self.params.max_len)
        ok = (items >= 0) & (items < len(self.item_vectors_))
        row_of = ragged.row_ids(off)[ok]
        off = ragged.offsets_from_row_ids(row_of, query.batch_size)
        items, age = items[ok], (query.now[row_of] - ts[ok])
        rows = np.flatnonzero(ragged.lengths(off) > 0).astype(np.int64)
        lens = ragged.lengths(off)[rows]
        width = max(int(lens.max(initial=1)), 1)
        sub = ragged.offsets_from_lengths(lens)
        flat = np.repeat(off[rows], lens) + ragged.position_in_row(sub)
        col = width - lens[ragged.row_ids(sub)] + ragged.position_in_row(sub)
        r = ragged.row_ids(sub)
        codes = np.zeros((len(rows), width), dtype=np.int64)
        ages: npt.NDArray[np.float64] = np.zeros((len(rows), width))
        codes[r, col], ages[r, col] = items[flat] + 1, age[flat]
        table = np.vstack(
            [np.zeros((1, self.item_vectors_.shape[1]), np.float32), self.item_vectors_]
        )
        vecs = torch.from_numpy(table[codes])
        return rows, vecs, torch.from_numpy(codes > 0), ages
