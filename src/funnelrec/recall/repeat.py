"""Repeat recall: the user's own past items again, by frequency and recency.

For repeat consumption (venues, music, groceries) the next item is often one the user already
had. An item's score sums its past events, each weighted ``0.5 ** (newer_events /
half_life_events)`` (``newer_events``: how many of the user's events came after it), so both
how often and how recently the user had it count; ``half_life_events = None`` counts
events (pure frequency). Items seen fewer than ``min_count`` times are skipped.

The funnel excludes the users' history from recall by default; set ``exclude_seen = false``
in the funnel config (and leave out ``seen_filter``) for this channel to be of use.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.recall._grouped import finish
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class RepeatParams(Params):
    """Parameters of ``repeat`` recall.

    Attributes:
        half_life_events: an event's weight halves every this many newer events of the user
            (``None``: every event weighs 1, pure frequency).
        history_window: only the last this many events of the user count.
        min_count: items the user had fewer times are not returned.
    """

    half_life_events: float | None = Field(default=10.0, gt=0)
    history_window: int = Field(default=200, ge=1)
    min_count: int = Field(default=1, ge=1)


@RECALL.register("repeat")
class RepeatRecall(RecallChannel[RepeatParams]):
    """The user's past items, most frequent and recent first (cold users: empty rows).

    Fitted state: ``n_items_`` (items outside the fitted catalogue are skipped).
    """

    params_model = RepeatParams
    example_params: ClassVar[dict[str, Any]] = {"half_life_events": 5.0, "min_count": 1}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self.n_items_ = int(dataset.n_items)
        return self

    def _retrieve(self, query: Query, k: int) -> Candidates:
        p = self.params
        offsets, items, _ = query.recent_history(p.history_window)
        rows = ragged.row_ids(offsets)
        newer = (ragged.lengths(offsets)[rows] - 1) - ragged.position_in_row(offsets)
        if p.half_life_events is None:
            weight = np.ones(len(items))
        else:
            weight = np.exp2(-newer / p.half_life_events)
        ok = (items >= 0) & (items < self.n_items_)
        rows, items, weight = rows[ok], items[ok], weight[ok]
        keys = rows * self.n_items_ + items
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        scores = np.bincount(inverse, weights=weight, minlength=len(uniq))
        keep = counts >= p.min_count
        uniq, scores = uniq[keep], scores[keep]
        return finish(
            uniq // self.n_items_, uniq % self.n_items_, scores, query, k, self.channel_name
        )
