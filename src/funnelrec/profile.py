"""Data profile: what a dataset supports, as figures (``funnelrec profile --data PATH``).

The profile answers the questions a funnel config depends on: are the timestamps real times
or only positions in a sequence, which feedback columns, impressions, item attributes (titles,
categories, tags, text) and knowledge graph are there, how often users come back to an item
(repeat consumption), how long the histories are, how dense the matrix is and how skewed the
popularity. ``tokens`` lists what the data offers in the vocabulary of ``funnelrec.needs``,
so ``funnelrec.preflight`` can check a config against it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from funnelrec import needs, ragged
from funnelrec.data.dataset import Dataset

DAY = 86_400.0
#: Datasets whose loader fills ``timestamp`` with positions instead of times.
ORDER_ONLY_FORMATS = ("sequences",)


@dataclass(frozen=True)
class DataProfile:
    """What one dataset supports (every figure over the whole interaction log).

    Attributes:
        name: dataset name.
        n_users, n_items, n_interactions: sizes (items: the whole catalogue).
        density: ``n_interactions / (n_users * n_items)``.
        timestamps: ``"real"`` (times in seconds), ``"order"`` (positions only) or ``"none"``.
        span_days: time between the first and the last event (0 without real times).
        feedback: feedback columns of the interactions (``rating``, ``click``, ...).
        has_weight: the interactions carry a ``weight`` (e.g. play counts).
        impressions: rows of the exposure log (0 = none).
        item_columns: item-table columns with at least one value, and their fill share.
        user_columns: user-table columns (features of users).
        has_kg: a knowledge graph is linked to items.
        repeat_rate: share of interactions whose ``(user, item)`` occurred before.
        last_repeat_rate: share of users (with >= 2 events) whose last item is a repeat.
        seq_len: quantiles of the per-user history length (``min``, ``p10``, ``median``,
            ``mean``, ``p90``, ``max``).
        short_users: share of users with fewer than 3 interactions (train only under ``loo``).
        head_share: share of interactions on the 1% most popular items.
        gini: Gini coefficient of item popularity (0 = flat, 1 = one item takes all).
        cold_items: share of catalogue items without any interaction.
    """

    name: str
    n_users: int
    n_items: int
    n_interactions: int
    density: float
    timestamps: str
    span_days: float
    feedback: tuple[str, ...]
    has_weight: bool
    impressions: int
    item_columns: dict[str, float]
    user_columns: tuple[str, ...]
    has_kg: bool
    repeat_rate: float
    last_repeat_rate: float
    seq_len: dict[str, float] = field(default_factory=dict)
    short_users: float = 0.0
    head_share: float = 0.0
    gini: float = 0.0
    cold_items: float = 0.0

    @property
    def real_time(self) -> bool:
        return self.timestamps == "real"

    @property
    def tokens(self) -> frozenset[str]:
        """What the data offers, as ``funnelrec.needs`` tokens."""
        out = {needs.item_column(c) for c in self.item_columns}
        out |= {needs.user_column(c) for c in self.user_columns}
        out |= {needs.feedback(c) for c in self.feedback}
        flags = {
            needs.FEEDBACK: bool(self.feedback),
            needs.REAL_TIME: self.real_time,
            needs.IMPRESSIONS: self.impressions > 0,
            needs.KG: self.has_kg,
            needs.INTERACTIONS: self.n_interactions > 0,
        }
        return frozenset(out | {k for k, v in flags.items() if v})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def profile(dataset: Dataset) -> DataProfile:
    """Profile ``dataset`` (vectorised; a few passes over the interaction log)."""
    a = dataset.arrays
    n = len(a.user_idx)
    kind = timestamp_kind(dataset)
    ts = a.timestamp
    lengths = np.bincount(a.user_idx, minlength=dataset.n_users)
    active = lengths[lengths > 0]
    repeat, last_repeat = _repeats(dataset)
    pop = dataset.item_popularity
    return DataProfile(
        name=dataset.name,
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        n_interactions=n,
        density=n / max(dataset.n_users * dataset.n_items, 1),
        timestamps=kind,
        span_days=float(ts.max() - ts.min()) / DAY if kind == "real" and n else 0.0,
        feedback=tuple(dataset.feedback),
        has_weight="weight" in dataset.interactions.columns,
        impressions=0 if dataset.impressions is None else dataset.impressions.height,
        item_columns=_filled(dataset.items),
        user_columns=tuple(_filled(dataset.users)) if dataset.users is not None else (),
        has_kg=dataset.kg is not None and dataset.item_entities is not None,
        repeat_rate=repeat,
        last_repeat_rate=last_repeat,
        seq_len=_quantiles(active),
        short_users=float((active < 3).mean()) if len(active) else 0.0,
        head_share=_head_share(pop),
        gini=_gini(pop),
        cold_items=float((pop == 0).mean()) if len(pop) else 0.0,
    )


def timestamp_kind(dataset: Dataset) -> str:
    """``"real"``, ``"order"`` (positions: sequence files, logs without a time column) or
    ``"none"`` (no interactions)."""
    ts = dataset.arrays.timestamp
    if len(ts) == 0:
        return "none"
    if dataset.meta.get("format") in ORDER_ONLY_FORMATS:
        return "order"
    if not np.all(ts == np.round(ts)):
        return "real"
    order = dataset.time_order
    offsets = ragged.offsets_from_lengths(
        np.bincount(dataset.arrays.user_idx, minlength=dataset.n_users)
    )
    in_user = ragged.position_in_row(offsets).astype(np.float64)
    if np.array_equal(ts[order], in_user) or np.array_equal(ts, np.arange(len(ts))):
        return "order"
    return "real"


def _repeats(dataset: Dataset) -> tuple[float, float]:
    """Share of repeated ``(user, item)`` events, and of users whose last item is a repeat."""
    offsets, items, _ = dataset.sequences
    if len(items) == 0:
        return 0.0, 0.0
    rows = ragged.row_ids(offsets)
    keys = rows * dataset.n_items + items
    _, first = np.unique(keys, return_index=True)
    repeated = np.ones(len(keys), dtype=bool)
    repeated[first] = False
    lengths = ragged.lengths(offsets)
    users = np.flatnonzero(lengths >= 2)
    last = offsets[users + 1] - 1
    last_rate = float(repeated[last].mean()) if len(users) else 0.0
    return float(repeated.mean()), last_rate


def _filled(table: pl.DataFrame | None) -> dict[str, float]:
    """Columns (but the index) with at least one value, and their share of non-null rows."""
    if table is None or table.height == 0:
        return {}
    out = {}
    for col in table.columns:
        if col in ("item_idx", "user_idx"):
            continue
        share = 1.0 - table[col].null_count() / table.height
        if share > 0:
            out[col] = round(share, 4)
    return out


def _quantiles(lengths: np.ndarray[Any, Any]) -> dict[str, float]:
    if len(lengths) == 0:
        return {}
    q = np.quantile(lengths, [0.1, 0.5, 0.9])
    return {
        "min": float(lengths.min()),
        "p10": float(q[0]),
        "median": float(q[1]),
        "mean": float(lengths.mean()),
        "p90": float(q[2]),
        "max": float(lengths.max()),
    }


def _head_share(pop: np.ndarray[Any, Any]) -> float:
    total = float(pop.sum())
    if total == 0:
        return 0.0
    head = max(len(pop) // 100, 1)
    return float(np.sort(pop)[::-1][:head].sum() / total)


def _gini(pop: np.ndarray[Any, Any]) -> float:
    total = float(pop.sum())
    if total == 0 or len(pop) < 2:
        return 0.0
    x = np.sort(pop)
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def rows(p: DataProfile) -> list[tuple[str, str]]:
    """``(what, value)`` lines of the profile table."""
    sl = p.seq_len
    items = ", ".join(f"{c} ({s:.0%})" for c, s in p.item_columns.items()) or "none"
    return [
        ("dataset", p.name),
        ("users / items / interactions", f"{p.n_users:,} / {p.n_items:,} / {p.n_interactions:,}"),
        ("density", f"{p.density:.5f}"),
        ("timestamps", p.timestamps + (f" ({p.span_days:.0f} days)" if p.real_time else "")),
        ("feedback columns", ", ".join(p.feedback) or "none"),
        ("weight column", "yes" if p.has_weight else "no"),
        ("impressions", f"{p.impressions:,}" if p.impressions else "none"),
        ("item columns", items),
        ("user columns", ", ".join(p.user_columns) or "none"),
        ("knowledge graph", "yes" if p.has_kg else "no"),
        ("repeat rate (events / last item)", f"{p.repeat_rate:.3f} / {p.last_repeat_rate:.3f}"),
        (
            "history length (min/median/mean/p90/max)",
            "/".join(f"{sl.get(k, 0):.0f}" for k in ("min", "median", "mean", "p90", "max")),
        ),
        ("users with < 3 events", f"{p.short_users:.3f}"),
        ("top-1% items' share of events", f"{p.head_share:.3f}"),
        ("popularity Gini", f"{p.gini:.3f}"),
        ("items without events", f"{p.cold_items:.3f}"),
    ]
