"""``Reranker``: turns ranked candidates into the final ``Slate`` (filters, rules, diversity).

Re-rankers chain: each receives the previous one's output (a ``Slate`` is a ``Candidates``).
They may drop and reorder items but never invent items the ranker did not score, except
rules that insert items on purpose (e.g. fixed-type slots), which mark them in ``reasons``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.stage import Params, Stage
from funnelrec.types import Candidates, Query, Slate

P = TypeVar("P", bound=Params)
ListsFn = Callable[[Query], Candidates]


FunnelContext = FitContext  # the fit context of re-rankers before the one contract (alias)


class Reranker(Stage[P]):
    """Base class; subclasses implement ``fit`` and ``_rerank``."""

    kind: ClassVar[str] = "rerank"

    def fit_in_funnel(self, dataset: Dataset, context: FitContext) -> Self:
        """Same as ``fit(dataset, context)`` (kept for callers of the older API)."""
        return self.fit(dataset, context)

    def rerank(self, query: Query, candidates: Candidates, k: int) -> Slate:
        """Final list of at most ``k`` items per query.

        Args:
            query: ``B`` queries.
            candidates: ``B`` ragged rows (``[B+1]`` offsets, ``[N]`` items and scores),
                usually the ranker's output or the previous re-ranker's slate.
            k: most items per row (``>= 1``).

        Returns:
            ``B`` rows of at most ``k`` items in slate order.

        Raises:
            NotFittedError: before ``fit``/``load``.
            ValueError: ``k < 1``, or ``candidates`` and ``query`` differ in batch size.
        """
        self.check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if candidates.batch_size != query.batch_size:
            raise ValueError(
                f"{candidates.batch_size} candidate rows for {query.batch_size} queries"
            )
        return Slate.of(self._rerank(query, candidates, k))

    @abstractmethod
    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        """At most ``k`` of ``candidates`` per row, in slate order (inputs checked)."""
