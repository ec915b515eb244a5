"""Fresh recall: the newest items, optionally the newest of the user's recent categories first.

An item's creation time is ``Dataset.item_created_at`` (the item table's ``created_at``, else
its first interaction; items with neither are never fresh). Ages are measured from a
reference time: the latest timestamp of the fitted data (``clock="fit"``: one snapshot for
everyone, like ``popular``) or each query's ``now`` (``clock="query"``: a live clock for
serving). Items created after the reference time are not available yet and are skipped.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field

from funnelrec import needs
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import IntArray
from funnelrec.recall._grouped import (
    F64,
    category_lists,
    exclusion_counts,
    finish,
    list_requests,
    take_ranges,
)
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

DAY = 86_400.0


class FreshParams(Params):
    """Parameters of ``fresh`` recall.

    Attributes:
        max_age_days: only items created at most this many days before the reference time
            are returned (``None``: no age limit, the newest items whatever their age).
        half_life_days: recency score ``0.5 ** (age_days / half_life_days)``, in ``(0, 1]``.
        clock: reference time of ages: ``"fit"`` = the latest timestamp of the fitted data;
            ``"query"`` = each query's ``now`` (a query with ``now`` before every creation
            time gets an empty row).
        per_category: put the newest items of the user's recent categories first (their
            score is ``1 + recency``), then the global newest (score ``recency``). Users
            without history (cold start) get the global newest only.
        history_window: the last this many history items define the recent categories.
        max_categories: the user's most frequent categories in that window that are used
            (ties: the most recent first).
    """

    max_age_days: float | None = Field(default=30.0, gt=0)
    half_life_days: float = Field(default=7.0, gt=0)
    clock: Literal["fit", "query"] = "fit"
    per_category: bool = False
    history_window: int = Field(default=20, ge=1)
    max_categories: int = Field(default=3, ge=1)


@RECALL.register("fresh")
class FreshRecall(RecallChannel[FreshParams]):
    """Newest items; serves cold-start users and gives new items their first exposures.

    Fitted state: ``created_`` (``[n_items]`` creation times, ``inf`` = unknown),
    ``item_category_`` (``[n_items]``, ``-1`` = none) and one list per group (group 0 = all
    items, group ``c + 1`` = category ``c``) sorted newest first, as ``items_[M]`` with
    search keys ``keys_[M] = group * stride_ + (span_ - (created - t0_))`` (ascending).
    """

    params_model = FreshParams

    @classmethod
    def requires(cls, params: FreshParams) -> tuple[needs.Need, ...]:
        """Real timestamps (ages in days); with ``per_category`` an item ``category``."""
        out = [needs.real_time("item ages in days")]
        if params.per_category:
            out.append(needs.item_columns(("category",), "per-category lists", "per_category"))
        return tuple(out)

    personalized: ClassVar[bool] = False
    example_params: ClassVar[dict[str, Any]] = {"per_category": True, "max_age_days": 120.0}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        self.reference_ = float(dataset.max_timestamp)
        self._index(dataset)
        return self

    def upsert_items(self, dataset: Dataset, item_idx: IntArray) -> None:
        """Re-index the catalogue of ``dataset`` (new items become fresh candidates).

        With ``clock="fit"`` the reference time advances to the newest creation time among
        the upserted items, so an item created after the fitted data is served at once.
        """
        self.check_fitted()
        created = dataset.item_created_at[np.asarray(item_idx, dtype=np.int64)]
        created = created[np.isfinite(created)]
        self.reference_ = max(self.reference_, float(created.max(initial=-np.inf)))
        self._index(dataset)

    def _index(self, dataset: Dataset) -> None:
        """Build the newest-first lists (all items, and per category) of ``dataset``."""
        created = np.asarray(dataset.item_created_at, dtype=np.float64)
        known = np.flatnonzero(np.isfinite(created))
        self.created_ = created
        self.t0_ = float(created[known].min()) if len(known) else 0.0
        self.span_ = float(created[known].max()) - self.t0_ if len(known) else 0.0
        self.stride_ = self.span_ + 1.0
        codes, names = dataset.item_categories
        self.item_category_ = codes
        offsets, self.items_ = category_lists(
            known, codes, len(names), created, self.params.per_category
        )
        sorted_group = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        self.keys_ = sorted_group * self.stride_ + (self.span_ - (created[self.items_] - self.t0_))

    def _retrieve(self, query: Query, k: int) -> Candidates:
        if self.params.clock == "fit":
            reference = np.full(query.batch_size, self.reference_)
        else:
            reference = query.now.astype(np.float64)
        p = self.params
        rows, groups = list_requests(
            query, self.item_category_, p.per_category, p.history_window, p.max_categories
        )
        depth = k + exclusion_counts(query)
        starts, stops = self._window(groups, reference[rows])
        segment, position = take_ranges(starts, stops, depth[rows])
        items = self.items_[position]
        age_days = (reference[rows[segment]] - self.created_[items]) / DAY
        boost = (groups[segment] > 0).astype(np.float64)
        scores = boost + np.exp2(-age_days / p.half_life_days)
        return finish(rows[segment], items, scores, query, k, self.channel_name)

    def _window(self, groups: IntArray, reference: F64) -> tuple[IntArray, IntArray]:
        """Slices ``[start, stop)`` of the items of ``groups`` created in the age window.

        Args:
            groups: ``[S]`` list to search (0 = all items, ``c + 1`` = category ``c``).
            reference: ``[S]`` reference time of each slice (seconds).
        """
        newest = self.span_ - (reference - self.t0_)  # key of an item created at `reference`
        max_age = self.params.max_age_days
        oldest = newest + (np.inf if max_age is None else max_age * DAY)
        base = groups * self.stride_
        lo = base + np.clip(newest, -0.5, self.span_ + 0.5)
        hi = base + np.clip(oldest, -0.5, self.span_ + 0.5)
        starts = np.searchsorted(self.keys_, lo, side="left").astype(np.int64)
        stops = np.searchsorted(self.keys_, hi, side="right").astype(np.int64)
        return starts, stops
