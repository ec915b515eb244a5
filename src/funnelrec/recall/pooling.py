"""Pooling recall (unsupervised): the user vector is the mean / sum / decayed mean of the
embeddings of the last ``max_len`` history items, taken from another channel's item
embeddings (``source``, e.g. ``mf``); no training of its own beyond that source.

``decay``: weight ``0.5 ** (age / half_life)`` with the age in positions from the latest
behaviour (``decay_by = "position"``) or in days before the request (``"time"``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from funnelrec.models.sequence.pooling import PoolMode, pool
from funnelrec.recall._pretrained import PretrainedItemRecall, PretrainedParams
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query


class PoolingParams(PretrainedParams):
    """``PretrainedParams`` plus ``mode`` (mean/sum/decay), ``decay_by`` and ``half_life``
    (positions, or days with ``decay_by = "time"``)."""

    mode: PoolMode = "mean"
    decay_by: Literal["position", "time"] = "position"
    half_life: float = Field(default=10.0, gt=0)


@RECALL.register("pooling")
class PoolingRecall(PretrainedItemRecall[PoolingParams]):
    """One pooled vector per query; queries without history get an empty row."""

    params_model = PoolingParams
    example_params: ClassVar[dict[str, Any]] = {
        "source_params": {"dim": 16, "epochs": 2, "threads": 1},
        "mode": "decay",
    }

    def _retrieve(self, query: Query, k: int) -> Candidates:
        p = self.params
        rows, vecs, mask, ages = self.history_batch(query)
        k = min(k, max(len(self._index), 1))
        ids = np.full((query.batch_size, k), -1, dtype=np.int64)
        scores = np.full((query.batch_size, k), -np.inf, dtype=np.float32)
        if len(rows):
            width = mask.shape[1]
            if p.decay_by == "position":
                age = np.broadcast_to(np.arange(width - 1, -1, -1, dtype=np.float64), mask.shape)
            else:
                age = ages / 86_400.0
            weights = torch.from_numpy(np.power(0.5, age / p.half_life).astype(np.float32))
            user = pool(vecs, mask, p.mode, weights).numpy()
            sub = query.select(rows)
            found, sc = self._index.search(user, k, sub.exclude_offsets, sub.exclude_items)
            ids[rows], scores[rows] = found, sc
        return Candidates.from_dense(ids, scores, self.channel_name)
