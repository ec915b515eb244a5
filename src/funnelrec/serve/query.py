"""Per-request funnel input: the training history merged with the store's state.

A request's history is the user's training history (oldest first) followed by their latest
store events; its exclusions are every item seen in training or in the store (plus the
request's own ``exclude`` list). Rows of concurrent requests become one batched ``Query``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.data.ids import ExternalId
from funnelrec.ragged import IntArray
from funnelrec.serve.model import ServedFunnel
from funnelrec.serve.store.base import UserState
from funnelrec.types import Query

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Request:
    """What a ``/recommend`` call asks: the user (canonical id), request time, extra exclusions."""

    user_key: ExternalId
    now: float
    exclude: tuple[ExternalId, ...] = ()


@dataclass(frozen=True)
class Row:
    """One request: dense user id (``-1``: cold start), history, exclusions, request time."""

    user_idx: int
    history: IntArray
    history_ts: F64
    exclude: IntArray
    now: float


def make_row(
    served: ServedFunnel,
    user_key: ExternalId,
    state: UserState,
    now: float,
    extra_exclude: Sequence[ExternalId] = (),
) -> Row:
    """The request's row (store items unknown to this funnel are skipped).

    Without store state or extra exclusions (most requests) the row is slices of the
    training data: the history is the user's sequence and the exclusions are the user's row
    of ``user_item`` (its distinct items, ascending), with no per-request sort.
    """
    user_idx = served.user_index(user_key)
    offsets, items, ts = served.dataset.sequences
    lo, hi = (int(offsets[user_idx]), int(offsets[user_idx + 1])) if user_idx >= 0 else (0, 0)
    history, history_ts = items[lo:hi], ts[lo:hi]
    if state.history:
        store_items = served.item_indices([item for item, _ in state.history])
        store_ts = np.asarray([t for _, t in state.history], dtype=np.float64)
        known = store_items >= 0
        history = np.concatenate([history, store_items[known]])
        history_ts = np.concatenate([history_ts, store_ts[known]])
    exclude = _trained_items(served, user_idx)
    more = [*sorted(state.seen), *extra_exclude]
    if more:
        ids = served.item_indices(more)
        exclude = np.union1d(exclude, ids[ids >= 0])
    return Row(user_idx=user_idx, history=history, history_ts=history_ts, exclude=exclude, now=now)


def _trained_items(served: ServedFunnel, user_idx: int) -> IntArray:
    """The user's distinct training items, ascending (none for a cold-start user)."""
    if user_idx < 0:
        return np.zeros(0, dtype=np.int64)
    seen = served.dataset.user_item  # CSR with duplicates summed: sorted, distinct indices
    items: IntArray = seen.indices[seen.indptr[user_idx] : seen.indptr[user_idx + 1]]
    return items.astype(np.int64)


def batch_query(rows: Sequence[Row], k: int) -> Query:
    """One ``Query`` with a row per request."""
    return Query(
        user_idx=np.asarray([r.user_idx for r in rows], dtype=np.int64),
        history_offsets=ragged.offsets_from_lengths(np.asarray([len(r.history) for r in rows])),
        history_items=np.concatenate([r.history for r in rows]).astype(np.int64),
        history_ts=np.concatenate([r.history_ts for r in rows]).astype(np.float64),
        exclude_offsets=ragged.offsets_from_lengths(np.asarray([len(r.exclude) for r in rows])),
        exclude_items=np.concatenate([r.exclude for r in rows]).astype(np.int64),
        k=k,
        now=np.asarray([r.now for r in rows], dtype=np.float64),
    )


def slate_cap(served: ServedFunnel, k: int, returned: int) -> str | None:
    """Why a slate has fewer than ``k`` items: the tightest stage cut below ``k``
    (``"rank.keep=50"``), else ``"candidates"`` (recall and filters left fewer); ``None``
    when the slate is full."""
    if returned >= k:
        return None
    config = served.funnel.config
    cuts = [
        ("recall.total", config.recall.total),
        ("prerank.keep", config.prerank.keep),
        ("rank.keep", config.rank.keep),
    ]
    name, value = min(cuts, key=lambda cut: cut[1])
    return f"{name}={value}" if value < k else "candidates"
