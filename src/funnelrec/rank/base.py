"""``Scorer``: pre-rankers and rankers re-score the candidates of the previous stage.

``fit(dataset, ctx)`` receives the funnel's ``FitContext``: its out-of-fold training lists
(``ctx.examples``) and its recall function (``ctx.retrieve``), so a model trains on
exposure-consistent candidates (the items recall really shows it) rather than only random
negatives. ``score`` returns the same items with new scores, each row sorted descending;
the previous scores stay in ``stage_scores``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar, TypeVar

from funnelrec.stage import Params, Stage
from funnelrec.types import Candidates, Query

P = TypeVar("P", bound=Params)

RetrieveFn = Callable[[Query], Candidates]


class Scorer(Stage[P]):
    """Base class of pre-rank and rank stages."""

    kind: ClassVar[str] = "rank"

    def score(self, query: Query, candidates: Candidates) -> Candidates:
        """Re-score ``candidates`` (same items), rows sorted by the new score."""
        self.check_fitted()
        if candidates.batch_size != query.batch_size:
            raise ValueError(
                f"{candidates.batch_size} candidate rows for {query.batch_size} queries"
            )
        return self._score(query, candidates).sorted()

    @abstractmethod
    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        """``candidates`` with new scores (same items; ``score`` sorts the rows)."""
