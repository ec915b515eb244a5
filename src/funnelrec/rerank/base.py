"""``Reranker``: turns ranked candidates into the final ``Slate`` (filters, rules, diversity).

Re-rankers chain: each receives the previous one's output (a ``Slate`` is a ``Candidates``).
They may drop and reorder items but never invent items the ranker did not score, except
rules that insert items on purpose (e.g. fixed-type slots), which mark them in ``reasons``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from funnelrec.data.dataset import Dataset
from funnelrec.stage import Params, Stage
from funnelrec.types import Candidates, Query, Slate

P = TypeVar("P", bound=Params)
ListsFn = Callable[[Query], Candidates]


@dataclass(frozen=True)
class FunnelContext:
    """What a re-ranker may use when it is fitted inside a ``Funnel``.

    Attributes:
        channels: the fitted recall channels by id (e.g. for their item embeddings).
        lists: ``query -> candidates``: the lists the funnel feeds this re-ranker (recall,
            pre-rank, rank and the re-rankers before it), uncut; ``None`` outside a funnel.
        valid: a held-out part whose interactions label those lists (learned re-rankers);
            ``None`` when the funnel was fitted without one.
        refit: ``True`` when refitting after item upserts (learned weights are kept).
    """

    channels: Mapping[str, Any] = field(default_factory=dict)
    lists: ListsFn | None = None
    valid: Dataset | None = None
    refit: bool = False


class Reranker(Stage[P]):
    """Base class; subclasses implement ``fit`` and ``_rerank``."""

    kind: ClassVar[str] = "rerank"

    def fit(self, dataset: Dataset) -> Self:
        raise NotImplementedError

    def fit_in_funnel(self, dataset: Dataset, context: FunnelContext) -> Self:
        """Fit inside a funnel; re-rankers that need the funnel's channels or lists override
        this (the default ignores ``context`` and calls ``fit``)."""
        return self.fit(dataset)

    def rerank(self, query: Query, candidates: Candidates, k: int) -> Slate:
        """Final list of at most ``k`` items per query."""
        self.check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if candidates.batch_size != query.batch_size:
            raise ValueError(
                f"{candidates.batch_size} candidate rows for {query.batch_size} queries"
            )
        return Slate.of(self._rerank(query, candidates, k))

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        raise NotImplementedError
