"""High-CTR recall: items ranked by a Beta-smoothed click-through rate.

Evidence per item is ``(clicks, shows)``:

- **impressions** (``Dataset.impressions`` present): shows = exposures, clicks = exposures
  with ``clicked == 1``;
- **feedback proxy** (no impressions): shows = the item's interactions, clicks = those whose
  ``positive_feedback`` column is ``>= positive_threshold`` (e.g. ratings >= 4, or likes among
  clicks) — the share of consumers who liked the item.

``CTR_i = (clicks_i + alpha) / (shows_i + alpha + beta)`` with a Beta(alpha, beta) prior fitted
by the method of moments (binomial noise removed from the variance) on the items with at
least ``min_impressions`` shows, or given as ``prior``. Items with fewer shows are not served.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
import polars as pl
from pydantic import Field, PositiveFloat

from funnelrec import needs
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import DataError
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

KAPPA_RANGE = (1e-2, 1e6)  # allowed prior strength alpha + beta


class HighCtrParams(Params):
    """Parameters of ``high_ctr`` recall.

    Attributes:
        min_impressions: items with fewer shows (exposures, or rated interactions in the
            proxy) are not returned; the prior is fitted on the items with at least this many.
        prior: ``(alpha, beta)`` of the Beta prior; ``None`` = method of moments.
        impressions_match: which exposure rows belong to the fitted data: ``"event"`` = rows
            whose ``(user_idx, timestamp)`` is an event of the interaction log (a slate shown
            with a logged click; exact for any split of the interactions), ``"time"`` = rows up
            to the log's latest timestamp, ``"all"`` = every row.
        positive_feedback: feedback column of the proxy (no impressions); ``None`` = ``like``
            if the data has it, else ``rating``.
        positive_threshold: an event is positive when its feedback is ``>=`` this; ``None`` =
            4.0 for ``rating``, 1.0 for other columns.
        per_category: put the best items of the user's recent categories first (score
            ``1 + CTR``), then the global best (score ``CTR``).
        history_window: the last this many history items define the recent categories.
        max_categories: the user's most frequent categories in that window that are used
            (ties: the most recent first).
    """

    min_impressions: int = Field(default=20, ge=1)
    prior: tuple[PositiveFloat, PositiveFloat] | None = None
    impressions_match: Literal["event", "time", "all"] = "event"
    positive_feedback: str | None = None
    positive_threshold: float | None = None
    per_category: bool = False
    history_window: int = Field(default=20, ge=1)
    max_categories: int = Field(default=3, ge=1)


@RECALL.register("high_ctr")
class HighCtrRecall(RecallChannel[HighCtrParams]):
    """Best smoothed CTR first; non-personalised unless ``per_category``.

    Fitted state: ``clicks_``/``shows_``/``ctr_`` ``[n_items]``, ``alpha_``/``beta_``,
    ``item_category_`` ``[n_items]`` and the served items best first, CSR-style
    ``list_offsets_[G+1]``/``list_items_``: group 0 = all items, group ``c + 1`` = category
    ``c`` (only with ``per_category``).
    """

    params_model = HighCtrParams

    @classmethod
    def requires(cls, params: HighCtrParams) -> tuple[needs.Need, ...]:
        """Impressions, or the feedback column of the CTR proxy (``like``/``rating``)."""
        columns = (params.positive_feedback,) if params.positive_feedback else ("like", "rating")
        out = [
            needs.Need(
                (needs.IMPRESSIONS, *(needs.feedback(c) for c in columns)),
                "click-through rates",
                "the data has no impressions and no ratings/likes: drop high_ctr "
                "or set positive_feedback to an existing feedback column",
            )
        ]
        if params.per_category:
            out.append(needs.item_columns(("category",), "per-category lists", "per_category"))
        return tuple(out)

    personalized: ClassVar[bool] = False

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        clicks, shows = self._evidence(dataset)
        eligible = shows >= self.params.min_impressions
        if self.params.prior is not None:
            alpha, beta = self.params.prior
        else:
            alpha, beta = beta_prior_moments(clicks[eligible], shows[eligible])
        self.clicks_, self.shows_ = clicks, shows
        self.alpha_, self.beta_ = float(alpha), float(beta)
        self.ctr_ = (clicks + alpha) / (shows + alpha + beta)
        served = np.flatnonzero(eligible)
        codes, names = dataset.item_categories
        self.item_category_ = codes
        self.list_offsets_, self.list_items_ = category_lists(
            served, codes, len(names), self.ctr_, self.params.per_category
        )
        return self

    def _retrieve(self, query: Query, k: int) -> Candidates:
        p = self.params
        rows, groups = list_requests(
            query, self.item_category_, p.per_category, p.history_window, p.max_categories
        )
        starts, stops = self.list_offsets_[groups], self.list_offsets_[groups + 1]
        segment, position = take_ranges(starts, stops, k + exclusion_counts(query)[rows])
        items = self.list_items_[position]
        scores = (groups[segment] > 0).astype(np.float64) + self.ctr_[items]
        return finish(rows[segment], items, scores, query, k, self.channel_name)

    # -- evidence -------------------------------------------------------------------------
    def _evidence(self, dataset: Dataset) -> tuple[F64, F64]:
        """``(clicks[n_items], shows[n_items])`` from impressions or the feedback proxy."""
        if dataset.impressions is not None:
            shown = self._matched_impressions(dataset).filter(
                pl.col("item_idx").is_between(0, dataset.n_items - 1)
            )
            items = shown["item_idx"].cast(pl.Int64).to_numpy()
            clicked = shown["clicked"].cast(pl.Float64).to_numpy()
        else:
            column, threshold = self._proxy_column(dataset)
            items = dataset.arrays.item_idx
            value = dataset.arrays.feedback[column]
            rated = ~np.isnan(value)
            items, clicked = items[rated], (value[rated] >= threshold).astype(np.float64)
        shows = np.bincount(items, minlength=dataset.n_items).astype(np.float64)
        clicks = np.bincount(items, weights=clicked, minlength=dataset.n_items).astype(np.float64)
        return clicks, shows

    def _matched_impressions(self, dataset: Dataset) -> pl.DataFrame:
        shown = dataset.impressions
        assert shown is not None
        match = self.params.impressions_match
        if match == "time":
            return shown.filter(pl.col("timestamp") <= dataset.max_timestamp)
        if match == "all":
            return shown
        keys = ["user_idx", "timestamp"]
        events = dataset.interactions.select(
            pl.col("user_idx").cast(shown["user_idx"].dtype),
            pl.col("timestamp").cast(shown["timestamp"].dtype),
        ).unique()
        matched = shown.join(events, on=keys, how="semi")
        if matched.height == 0 and shown.height > 0 and len(dataset) > 0:
            raise DataError(
                "high_ctr: no impression matches an interaction (user_idx, timestamp); "
                "set impressions_match='time' or 'all' for impression logs kept apart"
            )
        return matched

    def _proxy_column(self, dataset: Dataset) -> tuple[str, float]:
        column = self.params.positive_feedback
        if column is None:
            column = next((c for c in ("like", "rating") if c in dataset.feedback), None)
        if column is None or column not in dataset.feedback:
            raise DataError(
                f"high_ctr: dataset {dataset.name!r} has no impressions and no feedback column "
                f"{column or 'like/rating'!r} to estimate CTR from "
                f"(feedback columns: {list(dataset.feedback)}); set positive_feedback"
            )
        threshold = self.params.positive_threshold
        if threshold is None:
            threshold = 4.0 if column == "rating" else 1.0
        return column, threshold


def beta_prior_moments(clicks: F64, shows: F64) -> tuple[float, float]:
    """Beta prior ``(alpha, beta)`` by the method of moments on per-item rates ``clicks/shows``.

    The observed variance of the raw rates is reduced by their expected binomial noise
    ``mean * (1 - mean) * mean(1 / shows)`` before matching; without items (or spread) the
    prior falls back to uniform (fewer than two items) or the strongest allowed prior.

    Args:
        clicks: ``[n]`` successes per item.
        shows: ``[n]`` trials per item (all ``> 0``).
    """
    if len(shows) < 2:
        return 1.0, 1.0
    rate = clicks / shows
    mean = float(np.clip(rate.mean(), 1e-6, 1 - 1e-6))
    inv_n = float(np.mean(1.0 / shows))
    noise = mean * (1 - mean) * inv_n
    spread = (float(rate.var()) - noise) / max(1.0 - inv_n, 1e-12)
    kappa = mean * (1 - mean) / spread - 1.0 if spread > 0 else KAPPA_RANGE[1]
    kappa = float(np.clip(kappa, *KAPPA_RANGE))
    return mean * kappa, (1 - mean) * kappa
