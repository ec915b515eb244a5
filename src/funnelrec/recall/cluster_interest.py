"""Clustering multi-interest recall (training-free): the history's item embeddings (from
``source``, e.g. ``mf``) are clustered per user by batched spherical k-means; each cluster
centroid is an interest that searches the index alone, and results are merged with equal
quotas (reasons name the interest). Users with fewer distinct items get fewer interests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from funnelrec.models.sequence.pooling import cluster
from funnelrec.recall._interests import (
    InterestMerge,
    interest_candidates,
    merge_interests,
    search_interests,
)
from funnelrec.recall._pretrained import PretrainedItemRecall, PretrainedParams
from funnelrec.registry import RECALL
from funnelrec.types import Candidates, Query


class ClusterParams(PretrainedParams):
    """``PretrainedParams`` plus ``n_interests`` (clusters), k-means ``iterations`` and the
    ``merge`` of the interests' results."""

    n_interests: int = Field(default=4, ge=1)
    iterations: int = Field(default=10, ge=0)
    merge: InterestMerge = "quota"


@RECALL.register("cluster_interest")
class ClusterInterestRecall(PretrainedItemRecall[ClusterParams]):
    """Interests = k-means centroids of the recent history's item vectors."""

    params_model = ClusterParams
    example_params: ClassVar[dict[str, Any]] = {
        "source_params": {"dim": 16, "epochs": 2, "threads": 1},
        "n_interests": 3,
    }

    def _retrieve(self, query: Query, k: int) -> Candidates:
        p = self.params
        rows, vecs, mask, _ = self.history_batch(query)
        k = min(k, max(len(self._index), 1))
        if not len(rows):
            return Candidates.empty(query.batch_size, self.channel_name)
        centroids, counts = cluster(vecs, mask, p.n_interests, p.iterations)
        interests = np.ascontiguousarray(centroids.numpy(), dtype=np.float32)
        ids, scores = search_interests(self._index, interests, query.select(rows), k)
        merged = merge_interests(ids, scores, counts.numpy() > 0, k, p.merge)
        return interest_candidates(query.batch_size, rows, merged, p.n_interests, self.channel_name)
