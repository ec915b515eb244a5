"""Popular recall: most interacted items, optionally time-decayed (recent popularity) and
weighted by a feedback column (e.g. most purchased, or most stars)."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from funnelrec import needs
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
from funnelrec.recall.base import RecallChannel, global_topk
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

DAY = 86_400.0


class PopularParams(Params):
    """Parameters of ``popular`` recall (an item's score is the sum of its events' weights).

    Attributes:
        half_life_days: weight of an event halves every this many days before the latest
            event (``None`` = no decay).
        window_days: ignore events older than this many days before the latest event.
        feedback: weight each event by this feedback column (``purchase``: only purchases
            count; ``rating``: stars add up); ``None`` = every event weighs 1. Missing values
            and negative values weigh 0.
        feedback_min: with ``feedback``, an event weighs 1 when its value is ``>=`` this and 0
            otherwise (e.g. ``4`` counts ratings of 4 and 5), instead of the raw value.
    """

    half_life_days: float | None = Field(default=None, gt=0)
    window_days: float | None = Field(default=None, gt=0)
    feedback: str | None = None
    feedback_min: float | None = None

    @model_validator(mode="after")
    def _min_needs_column(self) -> Self:
        if self.feedback_min is not None and self.feedback is None:
            raise ValueError("feedback_min needs a feedback column")
        return self


@RECALL.register("popular")
class PopularRecall(RecallChannel[PopularParams]):
    """The same best-first list for everyone; the cold-start fallback of the funnel."""

    params_model = PopularParams

    @classmethod
    def requires(cls, params: PopularParams) -> tuple[needs.Need, ...]:
        """The ``feedback`` column; real timestamps for ``half_life_days``/``window_days``."""
        out = []
        if params.feedback is not None:
            out.append(
                needs.Need(
                    (needs.feedback(params.feedback),),
                    "event weights",
                    "set feedback to an existing feedback column or remove it",
                )
            )
        if params.half_life_days is not None or params.window_days is not None:
            out.append(needs.real_time("time decay / window in days"))
        return tuple(out)

    personalized: ClassVar[bool] = False

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        a = dataset.arrays
        age_days = (dataset.max_timestamp - a.timestamp) / DAY
        weight = self._feedback_weight(dataset)
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

    def _feedback_weight(self, dataset: Dataset) -> npt.NDArray[np.float64]:
        """Per-event base weight ``[N]`` from the ``feedback`` column (ones without one)."""
        column = self.params.feedback
        if column is None:
            return np.ones(len(dataset))
        if column not in dataset.feedback:
            raise DataError(
                f"popular: feedback column {column!r} not in dataset {dataset.name!r} "
                f"(feedback columns: {list(dataset.feedback)})"
            )
        value = np.nan_to_num(dataset.arrays.feedback[column].astype(np.float64), nan=0.0)
        if self.params.feedback_min is not None:
            return (value >= self.params.feedback_min).astype(np.float64)
        return np.maximum(value, 0.0)

    def _retrieve(self, query: Query, k: int) -> Candidates:
        return global_topk(self.ranked_items_, self.ranked_scores_, query, k, self.channel_name)
