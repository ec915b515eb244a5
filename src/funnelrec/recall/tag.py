"""Tag recall: the user's interest-tag profile, mixed from each tag's best items.

Profile: every history item (the last ``history_window``) gets a recency weight
``0.5 ** (newer_items / half_life_events) * 0.5 ** (age_days / half_life_days)`` and splits it
evenly over its tags (``Dataset.item_tags``; the category when there are no tags), so
``profile[B, n_tags] = weights[B, n_items] @ row_normalised(item_tags)[n_items, n_tags]``. The
user's ``max_tags`` strongest tags get shares ``p_t`` (summing to 1).

Mixing rule (Sainte-Laguë apportionment): the item at 0-based rank ``r`` of tag ``t``'s list
scores ``p_t / (2r + 1)``; sorting by that score hands each tag a share of every list prefix
proportional to ``p_t`` (a user 70% "jazz", 30% "rock" gets 7 jazz and 3 rock items in the
top 10). An item in several of the user's tags keeps its best score. Each tag's list holds its
``per_tag`` best items by popularity (interaction count) or smoothed CTR (``high_ctr``).
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from funnelrec import needs, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import IntArray
from funnelrec.recall._grouped import F64, exclusion_counts, finish, group_lists, take_ranges
from funnelrec.recall.base import RecallChannel
from funnelrec.recall.high_ctr import HighCtrRecall
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

DAY = 86_400.0


class TagParams(Params):
    """Parameters of ``tag`` recall.

    Attributes:
        half_life_events: a history item's weight halves for every this many newer items
            in the history (``None``: no positional decay).
        half_life_days: a history item's weight halves every this many days before the
            query's ``now`` (``None``: no time decay).
        history_window: only the last this many history items build the profile.
        max_tags: the user's strongest tags used (their shares are renormalised).
        per_tag: items kept per tag at fit (the depth a tag can contribute).
        rank_by: order of each tag's items: ``"popularity"`` (interaction count) or
            ``"ctr"`` (``high_ctr``'s smoothed CTR; needs impressions or feedback).
        fallback_popular: users without a profile (no tagged history) get the most popular
            items (at most ``per_tag``; score ``1 / (2r + 1)``) instead of an empty row.
    """

    half_life_events: float | None = Field(default=20.0, gt=0)
    half_life_days: float | None = Field(default=None, gt=0)
    history_window: int = Field(default=100, ge=1)
    max_tags: int = Field(default=5, ge=1)
    per_tag: int = Field(default=100, ge=1)
    rank_by: Literal["popularity", "ctr"] = "popularity"
    fallback_popular: bool = False


@RECALL.register("tag")
class TagRecall(RecallChannel[TagParams]):
    """Quota-style mix of the best items of the user's interest tags.

    Fitted state: ``item_tags_`` (``[n_items, n_tags]`` CSR, rows normalised to sum 1) and the
    tag lists CSR-style ``list_offsets_[n_tags+2]``/``list_items_``: group ``t`` = tag ``t``,
    the last group = all items (the popular fallback).
    """

    params_model = TagParams

    @classmethod
    def requires(cls, params: TagParams) -> tuple[needs.Need, ...]:
        """Item ``tags`` or ``category``; real timestamps for ``half_life_days``."""
        out = [needs.item_columns(("tags", "category"), "the user's tag profile", "(none)")]
        if params.half_life_days is not None:
            out.append(needs.real_time("time decay in days"))
        return tuple(out)

    personalized: ClassVar[bool] = True

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        tags, _ = dataset.item_tags
        tags = sp.csr_matrix(tags, dtype=np.float64)
        per_item = np.asarray(tags.sum(axis=1)).ravel()
        self.item_tags_ = sp.csr_matrix(sp.diags(1.0 / np.maximum(per_item, 1.0)) @ tags)
        if self.params.rank_by == "ctr":
            quality = HighCtrRecall(min_impressions=1).fit(dataset).ctr_
        else:
            quality = dataset.item_popularity
        n_items, n_tags = tags.shape
        pairs = tags.tocoo()
        everything = np.arange(n_items, dtype=np.int64)
        items = np.concatenate([pairs.row.astype(np.int64), everything])
        groups = np.concatenate([pairs.col.astype(np.int64), np.full(n_items, n_tags)])
        self.list_offsets_, self.list_items_ = group_lists(
            items, groups, quality[items], n_tags + 1, self.params.per_tag
        )
        return self

    def _retrieve(self, query: Query, k: int) -> Candidates:
        rows, tags, shares = self._profile(query)
        if self.params.fallback_popular:
            cold = np.setdiff1d(np.arange(query.batch_size), rows)
            rows = np.concatenate([rows, cold])
            tags = np.concatenate([tags, np.full(len(cold), len(self.list_offsets_) - 2)])
            shares = np.concatenate([shares, np.ones(len(cold))])
        starts, stops = self.list_offsets_[tags], self.list_offsets_[tags + 1]
        depth = _needed_depth(rows, shares, stops - starts, k + exclusion_counts(query)[rows])
        segment, position = take_ranges(starts, stops, depth)
        rank = position - starts[segment]
        scores = shares[segment] / (2.0 * rank + 1.0)
        items = self.list_items_[position]
        return finish(rows[segment], items, scores, query, k, self.channel_name)

    def profile(self, query: Query) -> sp.csr_matrix:
        """Recency-weighted tag profile ``[B, n_tags]`` of each query's history (unnormalised)."""
        offsets, items, ts = query.recent_history(self.params.history_window)
        rows = ragged.row_ids(offsets)
        newer = ragged.lengths(offsets)[rows] - 1 - ragged.position_in_row(offsets)
        weight = np.ones(len(items))
        if self.params.half_life_events is not None:
            weight *= np.exp2(-newer / self.params.half_life_events)
        if self.params.half_life_days is not None:
            age_days = np.maximum(query.now[rows] - ts, 0.0) / DAY
            weight *= np.exp2(-age_days / self.params.half_life_days)
        n_items = self.item_tags_.shape[0]
        known = (items >= 0) & (items < n_items)
        history = sp.csr_matrix(
            (weight[known], (rows[known], items[known])), shape=(query.batch_size, n_items)
        )
        return sp.csr_matrix(history @ self.item_tags_)

    def _profile(self, query: Query) -> tuple[IntArray, IntArray, F64]:
        """The strongest ``max_tags`` tags per row as flat ``(row, tag, share)``, rows ascending."""
        coo = self.profile(query).tocoo()
        positive = coo.data > 0
        rows = coo.row[positive].astype(np.int64)
        tags = coo.col[positive].astype(np.int64)
        weight = coo.data[positive]
        order = np.lexsort((tags, -weight, rows))
        rows, tags, weight = rows[order], tags[order], weight[order]
        offsets = ragged.offsets_from_row_ids(rows, query.batch_size)
        keep = ragged.first_k_mask(offsets, self.params.max_tags)
        rows, tags, weight = rows[keep], tags[keep], weight[keep]
        totals = np.bincount(rows, weights=weight, minlength=query.batch_size)
        return rows, tags, weight / totals[rows]


def _needed_depth(rows: IntArray, shares: F64, lengths: IntArray, depth: IntArray) -> IntArray:
    """How deep each ``(row, tag)`` list must be read so the row's top ``k`` stay exact.

    Pairs are grouped by row, strongest tag first; ``depth = k + n_excluded`` of the row. The
    strongest tag's first ``depth`` items hold ``k`` valid ones scoring at least
    ``p_max / (2 depth - 1)``, so tag ``t`` only needs its ranks ``r`` with
    ``p_t / (2r + 1) >= p_max / (2 depth - 1)`` (plus one for float ties). Rows whose
    strongest list is shorter than ``depth`` read every list ``depth`` deep.
    """
    first = np.unique(rows, return_index=True)[1]
    top_share = np.zeros(int(rows.max(initial=-1)) + 1)
    top_share[rows[first]] = shares[first]
    full = np.zeros(len(top_share), dtype=np.bool_)
    full[rows[first]] = lengths[first] >= depth[first]
    ratio = shares / top_share[rows]
    bound = np.floor((ratio * (2 * depth - 1) + 1) / 2).astype(np.int64) + 1
    return np.where(full[rows], np.minimum(bound, depth), depth)
