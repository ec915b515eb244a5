"""Already-seen filter: drops every item in the query's exclusion list (history, seen set).

Optionally also drops items the query's behaviour history holds (all of it, or only the last
``exclude_recent_days``) and items listed in a ``Query.context`` array.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from funnelrec import needs, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import IntArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import DAY
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class SeenFilterParams(Params):
    """Parameters of ``seen_filter`` (the query's exclusion list is always applied).

    Attributes:
        include_history: also drop items in the query's behaviour history.
        exclude_recent_days: with ``include_history``, drop only history items consumed
            within this many days before ``query.now`` (older ones may be recommended
            again); ``None`` drops the whole history.
        context_key: name of a ``query.context`` array ``[B, S]`` of dense item ids padded
            with ``-1`` (e.g. ``"seen_items"``: items shown recently) that are dropped too;
            ignored when the query has no such array.
    """

    include_history: bool = True
    exclude_recent_days: float | None = Field(default=None, gt=0)
    context_key: str | None = None

    @model_validator(mode="after")
    def _recent_needs_history(self) -> Self:
        if self.exclude_recent_days is not None and not self.include_history:
            raise ValueError("exclude_recent_days needs include_history = true")
        return self


@RERANK.register("seen_filter")
class SeenFilter(Reranker[SeenFilterParams]):
    """Removes excluded (and optionally history) items, keeps order, cuts to ``k``."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = SeenFilterParams

    @classmethod
    def requires(cls, params: SeenFilterParams) -> tuple[needs.Need, ...]:
        """Real timestamps for ``exclude_recent_days``."""
        return (needs.real_time("exclude_recent_days"),) if params.exclude_recent_days else ()

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self.n_items_ = dataset.n_items
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        kept = candidates.excluding(query)
        for offsets, items in self._extra_exclusions(query):
            seen = ragged.membership(kept.offsets, kept.item_idx, offsets, items)
            kept = kept.filter(~seen)
        return kept.truncate(k)

    def _extra_exclusions(self, query: Query) -> list[tuple[IntArray, IntArray]]:
        """Ragged ``(offsets, items)`` batches to drop beyond ``query``'s exclusions."""
        out = []
        p = self.params
        if p.include_history:
            offsets, items = query.history_offsets, query.history_items
            if p.exclude_recent_days is not None:
                rows = ragged.row_ids(offsets)
                recent = query.history_ts >= query.now[rows] - p.exclude_recent_days * DAY
                offsets = ragged.offsets_from_row_ids(rows[recent], query.batch_size)
                items = items[recent]
            out.append((offsets, items))
        if p.context_key is not None and p.context_key in query.context:
            listed = np.asarray(query.context[p.context_key]).reshape(query.batch_size, -1)
            valid = listed >= 0
            offsets = ragged.offsets_from_lengths(valid.sum(axis=1))
            out.append((offsets, listed[valid].astype(np.int64)))
        return out
