"""Read-only views for the funnel inspector: active users, a user's recent history with
titles, and item records (title, category) by id. Everything here runs on the funnel thread
(it reads the served dataset, which item upserts replace there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from funnelrec.data.ids import ExternalId
from funnelrec.ragged import IntArray
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.store.base import UserState


def active_users(served: ServedFunnel, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` users with the most training interactions (most active first)."""
    offsets = served.dataset.sequences[0]
    counts = np.diff(offsets)
    top = np.argsort(-counts, kind="stable")[:limit]
    ids = served.dataset.user_ids.external(top)
    return [{"user_id": u, "n_interactions": int(c)} for u, c in zip(ids, counts[top], strict=True)]


def item_records(served: ServedFunnel, idx: IntArray) -> list[dict[str, Any]]:
    """``title`` and ``category`` (``None`` when the item table lacks them) of known items."""
    table = served.dataset.items
    gather = pl.Series(idx, dtype=pl.Int64)
    cols = {
        c: table[c].cast(pl.Utf8).gather(gather).to_list() if c in table.columns else None
        for c in ("title", "category")
    }
    return [
        {
            "item_id": item,
            "title": None if cols["title"] is None else cols["title"][n],
            "category": None if cols["category"] is None else cols["category"][n],
        }
        for n, item in enumerate(served.item_ids(idx))
    ]


def items_by_id(served: ServedFunnel, raw: Sequence[ExternalId]) -> list[dict[str, Any]]:
    """Records of ``raw`` ids in order; unknown ids get ``known: false``."""
    idx = served.item_indices(list(raw))
    known = idx >= 0
    records = iter(item_records(served, idx[known]))
    return [
        {**next(records), "known": True}
        if ok
        else {"item_id": served.item_key(r), "title": None, "category": None, "known": False}
        for r, ok in zip(raw, known, strict=True)
    ]


def user_history(
    served: ServedFunnel, user_key: ExternalId, state: UserState, limit: int
) -> list[dict[str, Any]]:
    """The user's latest ``limit`` behaviours, newest first: training history, then the
    store's events (``source``: ``"train"`` or ``"live"``), with titles."""
    user = served.user_index(user_key)
    offsets, items, ts = served.dataset.sequences
    lo, hi = (int(offsets[user]), int(offsets[user + 1])) if user >= 0 else (0, 0)
    live_idx = served.item_indices([item for item, _ in state.history])
    live_ts = np.asarray([t for _, t in state.history], dtype=np.float64)
    known = live_idx >= 0
    all_idx = np.concatenate([items[lo:hi], live_idx[known]])[::-1][:limit]
    all_ts = np.concatenate([ts[lo:hi], live_ts[known]])[::-1][:limit]
    n_live = int(known.sum())
    return [
        {**rec, "timestamp": float(t), "source": "live" if pos < n_live else "train"}
        for pos, (rec, t) in enumerate(zip(item_records(served, all_idx), all_ts, strict=True))
    ]
