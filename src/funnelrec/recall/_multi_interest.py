"""Shared base of the multi-interest channels: several user vectors per query, each searching
the index alone.

``mind`` (capsule routing) and ``comirec_sa`` (self-attention) are trained by next-item
prediction through the interest closest to the target; ``cluster_interest`` (training-free,
in ``recall/cluster_interest.py``) clusters the history's item vectors. Per-interest
results are merged with equal quotas (``recall/_interests.py``) and every item's reason
names the interest that found it. Interests come from the query's history (real-time).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from funnelrec.index.base import VectorIndex
from funnelrec.models.layers import EmbeddingModel
from funnelrec.recall._interests import (
    InterestMerge,
    interest_candidates,
    merge_interests,
    search_interests,
)
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.types import Candidates, Query


class MultiInterestParams(SequenceParams):
    """``SequenceParams`` plus ``n_interests`` and the ``merge`` of their results
    (``quota``: equal shares, round-robin; ``score``: by inner product)."""

    n_interests: int = Field(default=4, ge=1)
    merge: InterestMerge = "quota"
    max_len: int = Field(default=20, ge=1)


class MultiInterestRecall(SequenceRecall[Any]):
    """Base: ``layout = last`` training; retrieval per interest + quota merge."""

    layout = "last"
    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "max_len": 10,
        "n_interests": 3,
        "threads": 1,
    }

    def _search(
        self, model: EmbeddingModel, index: VectorIndex, query: Query, k: int
    ) -> Candidates:
        batch, rows = self._query_batch(query)
        p = self.params
        k = min(k, max(len(index), 1))
        if not len(rows):
            return Candidates.empty(query.batch_size, self.channel_name)
        with torch.no_grad():
            model.eval()
            vecs = model.user_vectors(batch).cpu().numpy().astype(np.float32)
        valid = np.ones(vecs.shape[:2], dtype=bool)
        ids, scores = search_interests(index, vecs, query.select(rows), k)
        merged = merge_interests(ids, scores, valid, k, p.merge)
        return interest_candidates(query.batch_size, rows, merged, vecs.shape[1], self.channel_name)
