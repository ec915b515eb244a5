"""Near-duplicate dedup: items whose vectors are nearly parallel count as one item.

Two items are near-duplicates when the cosine similarity of their vectors reaches
``threshold`` (the same product listed twice, a re-uploaded song). The vectors come from an
item-table column of fixed-length numeric lists (e.g. text-content embeddings added by an
encoder) or from a fitted embedding recall channel of the same funnel (``mf``,
``two_tower``, ...). Walking each row in order, an item is dropped when it is a
near-duplicate of an item already kept (so the highest-ranked copy stays); repeated ids are
always duplicates. The walk runs over positions, each step vectorised over the batch.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import BoolArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import Padded, pad
from funnelrec.rerank._similarity import (
    SimilarityNeeds,
    chunks,
    description_of,
    pairwise_sets,
    pairwise_vectors,
)
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class NearDedupParams(Params):
    """Parameters of ``near_dedup`` (set exactly one of ``vector_column``, ``channel``,
    ``features``).

    Attributes:
        threshold: cosine similarity at or above which two items are duplicates.
        vector_column: item-table column of fixed-length numeric vectors (null = no vector:
            such items only collide with their own id).
        channel: id of a fitted embedding recall channel in the same funnel.
        features: ``tags`` (or ``category``): cosine of the item's tag set, for catalogues
            without vectors (identical tag sets are duplicates at any threshold).
    """

    threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    vector_column: str | None = None
    channel: str | None = None
    features: Literal["tags", "category"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = (self.vector_column, self.channel, self.features)
        if sum(s is not None for s in sources) != 1:
            raise ValueError("set exactly one of vector_column, channel or features")
        return self


@RERANK.register("near_dedup")
class NearDedup(SimilarityNeeds, Reranker[NearDedupParams]):
    """Keeps the first item of each group of near-duplicates, in incoming order."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = NearDedupParams

    example_params: ClassVar[dict[str, Any]] = {"features": "tags", "threshold": 0.99}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Unit item vectors ``[n_items, d]`` or a cosine-normalised tag CSR."""
        p = self.params
        self.vectors_, self.features_ = description_of(p, dataset, self.registered_name, ctx)
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        keep = np.zeros(view.flat.shape, dtype=np.bool_)
        for part, chunk in chunks(view, self.vectors_.shape[1]):
            keep[part] = self._first_of_groups(chunk)
        flat_keep = np.zeros(len(candidates), dtype=np.bool_)
        flat_keep[view.flat[keep]] = True
        return candidates.filter(flat_keep).truncate(k)

    def _first_of_groups(self, view: Padded) -> BoolArray:
        """``[b, N]``: candidates that are no near-duplicate of an earlier kept one."""
        items = view.items
        if self.params.features is None:
            sims = pairwise_vectors(self.vectors_, items)
        else:
            sims = pairwise_sets(self.features_, items, "cosine")
        dup = sims >= self.params.threshold - 1e-6  # float32 cosine of equal vectors
        dup |= items[:, :, None] == items[:, None, :]
        kept = np.zeros(items.shape, dtype=np.bool_)
        for i in range(view.width):
            kept[:, i] = view.valid[:, i] & ~(dup[:, i, :i] & kept[:, :i]).any(axis=1)
        return kept
