"""Already-seen filter: drops every item in the query's exclusion list (history, seen set)."""

from __future__ import annotations

from typing import Self

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.registry import RERANK
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class SeenFilterParams(Params):
    """``include_history``: also drop items in the query's behaviour history."""

    include_history: bool = True


@RERANK.register("seen_filter")
class SeenFilter(Reranker[SeenFilterParams]):
    """Removes excluded (and optionally history) items, keeps order, cuts to ``k``."""

    params_model = SeenFilterParams

    def fit(self, dataset: Dataset) -> Self:
        self.n_items_ = dataset.n_items
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        kept = candidates.excluding(query)
        if self.params.include_history:
            seen = ragged.membership(
                kept.offsets, kept.item_idx, query.history_offsets, query.history_items
            )
            kept = kept.filter(~seen)
        return kept.truncate(k)
