"""Helpers shared by the rule re-rankers: item-table columns as codes, padded candidate views.

Re-rankers that decide per position (scatter, MMR, slots) work on ``[B, N]`` padded views
of the ragged candidates, where ``N`` is the longest row; ``flat[b, j]`` is the position of
row ``b``'s ``j``-th candidate in the flat arrays (``-1`` for padding). The decided order is
turned back into ``Candidates`` with ``take_order``, so every aligned array (scores,
provenance, stage scores, reasons) follows its item.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.types import Candidates

DAY = 86_400.0
G = TypeVar("G", bound=np.generic)


def item_column(dataset: Dataset, column: str, stage: str) -> pl.Series:
    """The item table's ``column`` (one value per ``item_idx``).

    Raises:
        ConfigError: naming the stage and the column when the item table lacks it.
    """
    missing = dataset.meta.get("missing_item_file")
    if column not in dataset.items.columns and missing:
        raise DataError(
            f"item file {missing} is missing: rerank {stage} needs its {column!r} column "
            "(add the file, or remove the stage from the config)"
        )
    if column not in dataset.items.columns:
        known = ", ".join(c for c in dataset.items.columns if c != "item_idx")
        raise ConfigError(
            f"rerank {stage}: item column {column!r} not found; item columns are: {known}"
        )
    return dataset.items[column]


def column_codes(values: pl.Series) -> IntArray:
    """Dense code per value ``[n]`` (equal values share a code), ``-1`` for nulls.

    Codes follow the sorted order of the distinct values, so they do not depend on row order.
    """
    if values.dtype == pl.Null or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    ranks = values.rank("dense").cast(pl.Int64).fill_null(0).to_numpy()
    return (ranks - 1).astype(np.int64)


def gather(per_item: npt.NDArray[G], items: IntArray, fill: float) -> npt.NDArray[G]:
    """``per_item[items]`` where items outside ``[0, len(per_item))`` get ``fill``.

    Items unknown to the fitted catalogue (e.g. upserted after fitting) then behave as
    items without the attribute instead of raising ``IndexError``.
    """
    known = (items >= 0) & (items < len(per_item))
    out = np.full(items.shape, fill, dtype=per_item.dtype)
    out[known] = per_item[items[known]]
    return out


@dataclass(frozen=True)
class Padded:
    """``[B, N]`` view of ragged candidates.

    Attributes:
        flat: ``[B, N]`` position of each candidate in the flat arrays, ``-1`` for padding.
        items: ``[B, N]`` item ids, ``-1`` for padding.
        valid: ``[B, N]`` ``True`` where a candidate exists.
    """

    flat: IntArray
    items: IntArray
    valid: BoolArray

    @property
    def width(self) -> int:
        return int(self.flat.shape[1])


def pad(candidates: Candidates) -> Padded:
    """The ``[B, N]`` view of ``candidates`` (``N`` = longest row, at least 1)."""
    width = max(int(candidates.lengths().max(initial=0)), 1)
    positions = np.arange(len(candidates), dtype=np.int64)
    flat = ragged.to_dense(candidates.offsets, positions, width, -1).astype(np.int64)
    valid = flat >= 0
    items = np.full(flat.shape, -1, dtype=np.int64)
    items[valid] = candidates.item_idx[flat[valid]]
    return Padded(flat=flat, items=items, valid=valid)


def spread(view: Padded, values: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
    """Per-candidate flat ``values[N]`` laid out as ``[B, N]`` (``fill`` on padding)."""
    out = np.full(view.flat.shape, fill, dtype=values.dtype)
    out[view.valid] = values[view.flat[view.valid]]
    return out


def take_order(candidates: Candidates, order: IntArray) -> Candidates:
    """Candidates re-ordered by ``order[B, K]`` (flat positions, ``-1`` = nothing there)."""
    chosen = order[order >= 0]
    return candidates.take(chosen.astype(np.int64))


def place(
    candidates: Candidates,
    view: Padded,
    fillers: BoolArray,
    positions: IntArray,
    chosen: IntArray,
    moved: IntArray,
    reasons: list[str],
    k: int,
) -> Candidates:
    """Put slot items at fixed positions and the fillers, in order, around them.

    A slot whose position lies beyond the fillers goes right after them. Inserted items
    (not among the candidates) get the row's lowest score, no channel and their reason.

    Args:
        candidates: the incoming candidates; ``view`` is their padded view ``[B, N]``.
        fillers: ``[B, N]`` candidates that fill the non-slot positions, in row order.
        positions: ``[S]`` 0-based slot positions, ascending.
        chosen: ``[B, S]`` item placed in each slot, ``-1`` = slot left to the fillers.
        moved: ``[B, S]`` flat position of the chosen item among the candidates, ``-1``
            when it comes from the catalogue.
        reasons: ``[S]`` reason text of each slot.
        k: the most items per row.
    """
    b, n = view.flat.shape
    fillers = fillers & ~(view.items[:, :, None] == chosen[:, None, :]).any(axis=2)
    keys = _merge_keys(chosen >= 0, fillers, positions)
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    keep = np.take_along_axis(keys, order, axis=1) < np.iinfo(np.int64).max
    rows = np.nonzero(keep)[0].astype(np.int64)
    cols = order[keep]
    src = np.concatenate([moved, view.flat], axis=1)[rows, cols]
    new = np.concatenate([chosen, np.full((b, n), -1, dtype=np.int64)], axis=1)[rows, cols]
    text = None
    if (chosen >= 0).any() or candidates.reasons is not None:
        labels = np.asarray([*reasons, None], dtype=object)
        text = labels[np.where(cols < len(positions), cols, len(positions))]
    return _assemble(candidates, view, rows, src, new, text)


def _merge_keys(filled: BoolArray, fillers: BoolArray, positions: IntArray) -> IntArray:
    """Sort keys ``[B, S + N]`` interleaving filled slots ``[B, S]`` and fillers ``[B, N]``.

    Filler ``j`` (its rank among the row's fillers) gets ``2j + 1``; a filled slot at
    position ``p`` with ``r`` filled slots before it gets ``2(p - r)``, i.e. it goes just
    before filler ``p - r``, which puts it at position ``p``. Absent entries get int64 max.
    """
    big = np.iinfo(np.int64).max
    before: IntArray = np.cumsum(filled, axis=1) - filled
    slot_keys = np.where(filled, 2 * (positions[None, :] - before), big)
    filler_keys = np.where(fillers, 2 * (np.cumsum(fillers, axis=1) - 1) + 1, big)
    keys: IntArray = np.concatenate([slot_keys, filler_keys], axis=1).astype(np.int64)
    return keys


def _assemble(
    candidates: Candidates,
    view: Padded,
    rows: IntArray,
    src: IntArray,
    new: IntArray,
    text: npt.NDArray[np.object_] | None,
) -> Candidates:
    """Candidates from per-element sources: ``src >= 0`` copies that flat element, else the
    element is the inserted item ``new``. ``rows`` ``[M]`` are ascending row ids."""
    fresh = src < 0
    offsets = ragged.offsets_from_row_ids(rows, candidates.batch_size)

    def copy(values: npt.NDArray[Any], fill: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.array(fill, dtype=values.dtype)
        out[~fresh] = values[src[~fresh]]
        return out

    n_channels = len(candidates.channels)
    source, ranks, reasons = candidates.source, candidates.channel_ranks, None
    if text is not None:
        old = candidates.reasons
        base = copy(old, np.full(len(src), "", dtype=object)) if old is not None else None
        reasons = np.where(text != None, text, "" if base is None else base)  # noqa: E711
    return dataclasses.replace(
        candidates,
        offsets=offsets,
        item_idx=copy(candidates.item_idx, new),
        scores=copy(candidates.scores, _row_min(candidates.scores, view)[rows]),
        source=None if source is None else copy(source, np.full(len(src), n_channels)),
        channel_ranks=None
        if ranks is None
        else copy(ranks, np.full((len(src), ranks.shape[1]), -1)),
        stage_scores={
            name: copy(v, _row_min(v, view)[rows]) for name, v in candidates.stage_scores.items()
        },
        reasons=None if reasons is None else reasons.astype(object),
    )


def _row_min(values: npt.NDArray[np.floating], view: Padded) -> npt.NDArray[np.floating]:
    """Lowest value of each row ``[B]`` (0 for empty rows)."""
    low = spread(view, values.astype(np.float64), np.inf).min(axis=1)
    return np.where(np.isfinite(low), low, 0.0).astype(values.dtype)
