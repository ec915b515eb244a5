"""Features only a funnel has, as a dense ``[N, F]`` matrix (stacking rankers).

``FunnelFeatures.build(query, candidates)`` is the one code path at training and serving;
it reads the candidates' recall evidence (``stage_scores`` written by
``funnelrec.stacking.annotate`` and the provenance ranks) and small item tables fitted once:

* ``channels``: per channel its score where it found the item (``NaN`` elsewhere), its rank
  gain ``1/log2(2 + rank)`` and presence; the merged recall score; how many channels found
  the item; for channels that score any item (embedding and sequence models, item-CF,
  user-CF, ALS, EASE) their score of every candidate; for channels with item vectors the
  max/mean cosine of the candidate to the user's last items;
* ``popularity``: log count of the item's events before the reference time, and for each
  of ``trend_days`` the log count in that many days before it; the item's age (days since
  its first event);
* ``user``: log history length and days since the user's previous event;
* ``category``: share of the user's last ``recent`` items in the candidate's category.

The reference time is the user's latest behaviour (``reference = "last_event"``, the same
at training cut points and at serving) or the request time (``"now"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import Field

from funnelrec import provenance, ragged
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

F32 = npt.NDArray[np.float32]
DAY = 86400.0


class FunnelFeatureConfig(Params):
    """Which funnel features a stacking ranker sees (see module doc)."""

    channels: bool = True
    embeddings: bool = True
    popularity: bool = True
    trend_days: list[float] = Field(default_factory=lambda: [1.0, 7.0, 30.0])
    user: bool = True
    category: bool = True
    recent: int = Field(default=10, ge=1)
    reference: Literal["last_event", "now"] = "last_event"


class FunnelFeatures:
    """Fitted item tables plus ``build(query, candidates) -> [N, F]``."""

    def __init__(self, config: FunnelFeatureConfig | None = None) -> None:
        self.config = config or FunnelFeatureConfig()
        self.channels: tuple[str, ...] = ()
        self.score_channels: tuple[str, ...] = ()
        self.vector_channels: tuple[str, ...] = ()
        self.tables: dict[str, np.ndarray[Any, Any]] = {}

    def fit(self, dataset: Dataset, candidates: Candidates) -> Self:
        """Item tables of ``dataset``; channel names from a sample of ``candidates``."""
        self.channels = tuple(candidates.channels) if self.config.channels else ()
        keys = candidates.stage_scores
        use = self.config.embeddings
        self.score_channels = tuple(c for c in self.channels if use and f"cs:{c}" in keys)
        self.vector_channels = tuple(c for c in self.channels if use and f"sim_max:{c}" in keys)
        a = dataset.arrays
        span = _span(a.timestamp)
        self.tables = {
            "item_time": np.sort(a.item_idx * span + a.timestamp),
            "span": np.asarray([span]),
            "first_seen": _first_seen(a.item_idx, a.timestamp, dataset.n_items),
            "category": _categories(dataset),
        }
        return self

    @property
    def names(self) -> list[str]:
        """Column names of ``build``'s matrix."""
        c, out = self.config, []
        for ch in self.channels:
            out += [f"score:{ch}", f"rank_gain:{ch}", f"found:{ch}"]
        if c.channels:
            out += ["recall_score", "n_channels"]
        out += [f"full_score:{ch}" for ch in self.score_channels]
        for ch in self.vector_channels:
            out += [f"sim_max:{ch}", f"sim_mean:{ch}"]
        if c.popularity:
            out += ["log_pop", *(f"trend_{w:g}d" for w in c.trend_days), "item_age_days"]
        if c.user:
            out += ["log_history", "days_since_last"]
        if c.category:
            out += ["category_share"]
        return out

    def build(self, query: Query, candidates: Candidates) -> F32:
        """``[N, F]`` features of every candidate, in the candidates' flat order."""
        cols: list[FloatArray] = []
        n = len(candidates)
        rows = candidates.row_ids()
        ref = self._reference_time(query)[rows]
        scores = candidates.stage_scores
        if self.config.channels:
            ranks = provenance.ranks_for(candidates, self.channels)
            for j, ch in enumerate(self.channels):
                found = ranks[:, j] >= 0
                own = np.asarray(scores.get(f"ch:{ch}", np.zeros(n)), dtype=np.float32)
                cols.append(np.where(found, own, np.nan))
                cols.append(np.where(found, 1.0 / np.log2(2.0 + np.maximum(ranks[:, j], 0)), 0))
                cols.append(found.astype(np.float32))
            cols.append(np.asarray(scores.get("recall", np.zeros(n)), dtype=np.float32))
            cols.append((ranks >= 0).sum(axis=1).astype(np.float32))
        keys = [f"cs:{ch}" for ch in self.score_channels]
        keys += [f"{key}:{ch}" for ch in self.vector_channels for key in ("sim_max", "sim_mean")]
        for key in keys:
            cols.append(np.asarray(scores.get(key, np.full(n, np.nan)), np.float32))
        if self.config.popularity:
            cols += self._popularity(candidates.item_idx, ref)
        if self.config.user:
            cols += self._user(query, rows, ref)
        if self.config.category:
            cols.append(self._category_share(query, candidates, rows))
        if not cols:
            return np.zeros((n, 0), dtype=np.float32)
        return np.stack([np.asarray(c, dtype=np.float32) for c in cols], axis=1)

    def _reference_time(self, query: Query) -> npt.NDArray[np.float64]:
        stamp = np.asarray(query.now, dtype=np.float64)
        if self.config.reference == "last_event" and len(query.history_ts):
            lens = ragged.lengths(query.history_offsets)
            last = np.maximum(query.history_offsets[1:] - 1, 0)
            stamp = np.where(lens > 0, query.history_ts[last], stamp)
        return stamp

    def _popularity(self, items: IntArray, ref: npt.NDArray[np.float64]) -> list[FloatArray]:
        keys, span = self.tables["item_time"], float(self.tables["span"][0])
        first = self.tables["first_seen"]
        n_items = len(first)
        known = (items >= 0) & (items < n_items)
        safe = np.where(known, items, 0)
        base = safe * span + np.clip(ref, 0.0, span / 2)
        hi = np.searchsorted(keys, base, side="left")  # strictly before: no label events
        lo = np.searchsorted(keys, safe * span)
        cols = [np.where(known, np.log1p(hi - lo), 0.0)]
        for w in self.config.trend_days:
            start = np.searchsorted(keys, np.maximum(base - w * DAY, safe * span))
            cols.append(np.where(known, np.log1p(hi - start), 0.0))
        age = (ref - first[safe]) / DAY
        cols.append(np.where(known & (first[safe] < ref), age, np.nan))
        return cols

    def _user(self, query: Query, rows: IntArray, ref: npt.NDArray[np.float64]) -> list[FloatArray]:
        """Log history length; days from the previous event to the reference time (with
        ``last_event``: the gap between the user's last two events)."""
        lens = ragged.lengths(query.history_offsets)
        k = 2 if self.config.reference == "last_event" else 1
        before = np.full(query.batch_size, np.nan)
        has = lens >= k
        before[has] = query.history_ts[query.history_offsets[1:][has] - k]
        gap = (self._reference_time(query) - before) / DAY
        return [np.log1p(lens[rows]).astype(np.float64), gap[rows]]

    def _category_share(self, query: Query, candidates: Candidates, rows: IntArray) -> FloatArray:
        cat = self.tables["category"]
        if cat.max(initial=0) <= 0:
            return np.zeros(len(candidates), dtype=np.float32)
        h_off, h_items, _ = query.recent_history(self.config.recent)
        n_cat = int(cat.max()) + 1
        h_cat = np.where((h_items >= 0) & (h_items < len(cat)), cat[np.clip(h_items, 0, None)], 0)
        counts = np.zeros((query.batch_size, n_cat), dtype=np.float32)
        np.add.at(counts, (ragged.row_ids(h_off), h_cat), 1.0)
        counts[:, 0] = 0.0
        items = candidates.item_idx
        c_cat = np.where((items >= 0) & (items < len(cat)), cat[np.clip(items, 0, len(cat) - 1)], 0)
        lens = np.maximum(ragged.lengths(h_off), 1)
        return (counts[rows, c_cat] / lens[rows]).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
        meta = {
            "config": self.config.model_dump(mode="json"),
            "channels": list(self.channels),
            "score_channels": list(self.score_channels),
            "vector_channels": list(self.vector_channels),
        }
        return meta, dict(self.tables)

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], tables: Mapping[str, np.ndarray[Any, Any]]
    ) -> FunnelFeatures:
        out = cls(FunnelFeatureConfig.model_validate(meta["config"]))
        out.channels = tuple(meta["channels"])
        out.vector_channels = tuple(meta["vector_channels"])
        # artifacts before score_channels: every vector channel also gave its full score
        out.score_channels = tuple(meta.get("score_channels", meta["vector_channels"]))
        out.tables = dict(tables)
        return out


def _first_seen(items: IntArray, ts: npt.NDArray[np.float64], n_items: int) -> FloatArray:
    out = np.full(n_items, np.inf)
    np.minimum.at(out, items, ts)
    return np.where(np.isfinite(out), out, np.nan)


def _categories(dataset: Dataset) -> IntArray:
    """``[n_items]`` category code per item (``0``: none) from ``category`` or the first tag."""
    items = dataset.items
    col: list[Any] | None = None
    if items is not None and "category" in items.columns:
        col = items["category"].cast(pl.Utf8).to_list()
    elif items is not None and "tags" in items.columns:
        col = [(t[0] if t else None) for t in items["tags"].to_list()]
    if col is None:
        return np.zeros(dataset.n_items, dtype=np.int64)
    vocab = {v: i + 1 for i, v in enumerate(sorted({c for c in col if c is not None}))}
    codes = np.asarray([vocab.get(c, 0) if c is not None else 0 for c in col], dtype=np.int64)
    out = np.zeros(dataset.n_items, dtype=np.int64)
    n = min(len(codes), dataset.n_items)
    out[:n] = codes[:n]
    return out


def _span(ts: npt.NDArray[np.float64]) -> float:
    """A time span larger than every timestamp (keys ``item * span + t`` never overlap)."""
    return float(2.0 ** np.ceil(np.log2(max(float(ts.max(initial=0.0)), 1.0) * 4 + 1.0)))
