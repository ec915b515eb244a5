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
    """Base class of pre-rank and rank stages (one scorer serves either slot; a pre-ranker is
    a ``Scorer`` registered under ``PRERANK`` with ``kind = "prerank"``)."""

    kind: ClassVar[str] = "rank"

    def score(self, query: Query, candidates: Candidates) -> Candidates:
        """Re-score ``candidates`` (same items), rows sorted by the new score.

        Args:
            query: ``B`` queries.
            candidates: ``B`` ragged rows (``[B+1]`` offsets, ``[N]`` items and scores).

        Returns:
            The same ``N`` items with new ``[N]`` scores, each row sorted descending; the
            previous scores stay in ``stage_scores``.

        Raises:
            NotFittedError: before ``fit``/``load``.
            ValueError: ``candidates`` and ``query`` differ in batch size.
        """
        self.check_fitted()
        if candidates.batch_size != query.batch_size:
            raise ValueError(
                f"{candidates.batch_size} candidate rows for {query.batch_size} queries"
            )
        return self._score(query, candidates).sorted()

    @abstractmethod
    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        """``candidates`` with new scores (same items; ``score`` sorts the rows)."""
