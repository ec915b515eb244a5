"""Pass-through scorer: keeps the previous stage's scores (the slot's no-op default)."""

from __future__ import annotations

from typing import ClassVar, Self

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.rank.base import Scorer
from funnelrec.registry import RANK
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


@RANK.register("passthrough")
class PassthroughRanker(Scorer[Params]):
    """Returns the candidates with their incoming scores (stage recorded in the trace)."""

    kind: ClassVar[str] = "rank"
    reads_channel_evidence: ClassVar[bool] = False

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self.n_items_ = dataset.n_items
        return self

    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        return candidates.with_scores(candidates.scores, stage=self.kind)
