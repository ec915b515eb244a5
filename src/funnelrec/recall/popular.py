"""Popular recall: most interacted items, optionally time-decayed (recent popularity)."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field

from funnelrec.data.dataset import Dataset
from funnelrec.recall.base import RecallChannel, global_topk
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

DAY = 86_400.0


class PopularParams(Params):
    """``half_life_days``: weight of an event halves every this many days before the
    latest event (``None`` = plain counts). ``window_days``: ignore older events."""

    half_life_days: float | None = Field(default=None, gt=0)
    window_days: float | None = Field(default=None, gt=0)


@RECALL.register("popular")
class PopularRecall(RecallChannel[PopularParams]):
    """The same best-first list for everyone; the cold-start fallback of the funnel."""

    params_model = PopularParams
    personalized: ClassVar[bool] = False

    def fit(self, dataset: Dataset) -> Self:
        a = dataset.arrays
        age_days = (dataset.max_timestamp - a.timestamp) / DAY
        weight = np.ones(len(a.item_idx))
        if self.params.window_days is not None:
            weight = np.where(age_days <= self.params.window_days, weight, 0.0)
        if self.params.half_life_days is not None:
            weight = weight * np.exp2(-age_days / self.params.half_life_days)
        scores = np.bincount(a.item_idx, weights=weight, minlength=dataset.n_items)
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] > 0]
        self.ranked_items_ = order.astype(np.int64)
        self.ranked_scores_ = scores[order].astype(np.float32)
        return self

    def _retrieve(self, query: Query, k: int) -> Candidates:
        return global_topk(self.ranked_items_, self.ranked_scores_, query, k, self.channel_name)
