"""Merge recall channels: per-channel quotas, dedup, cross-channel scores, provenance.

Channels are taken in priority order (config order). Each contributes up to its quota of
items not already contributed by an earlier channel (channels are asked for extra items so
duplicates do not eat the quota). Every merged item records its 0-based rank in every
channel that found it (``channel_ranks[N, C]``, ``-1`` if absent; column ``c`` belongs to
channel ``results[c].name``, matched by id in ``funnelrec.provenance``, so a channel that
returns nothing is an all ``-1`` column of its own) and its contributing channel
(``source``). The merged score sums each channel's normalised score times the channel's
weight, so items found by several channels rise. Reasons given by channels
(``Candidates.reasons``, e.g. meta-path explanations) follow their items, first channel first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.ragged import BoolArray, FloatArray, IntArray
from funnelrec.types import Candidates

Normalisation = Literal["rrf", "minmax", "rank", "none"]
RRF_K = 60.0


@dataclass(frozen=True)
class ChannelResult:
    """One channel's candidates with its merge settings."""

    name: str
    candidates: Candidates
    quota: int
    weight: float = 1.0


def normalise(cands: Candidates, how: Normalisation) -> FloatArray:
    """Per-row score normalisation of one channel's (sorted) candidates.

    ``rrf``: 1/(60 + rank + 1) (reciprocal-rank fusion); ``rank``: 1 - rank/len;
    ``minmax``: (s - min)/(max - min) per row (1 when all equal); ``none``: raw score.
    """
    pos = ragged.position_in_row(cands.offsets).astype(np.float32)
    if how == "rrf":
        return (1.0 / (RRF_K + pos + 1.0)).astype(np.float32)
    if how == "rank":
        lens = cands.lengths()[cands.row_ids()].astype(np.float32)
        return (1.0 - pos / np.maximum(lens, 1.0)).astype(np.float32)
    if how == "minmax":
        rows = cands.row_ids()
        lo = np.full(cands.batch_size, np.inf, dtype=np.float32)
        hi = np.full(cands.batch_size, -np.inf, dtype=np.float32)
        filled = np.flatnonzero(cands.lengths() > 0)
        if len(filled):  # one segment per non-empty row
            starts = cands.offsets[filled]
            lo[filled] = np.minimum.reduceat(cands.scores, starts)
            hi[filled] = np.maximum.reduceat(cands.scores, starts)
        span = (hi - lo)[rows]
        out = np.where(span > 0, (cands.scores - lo[rows]) / np.where(span > 0, span, 1.0), 1.0)
        return out.astype(np.float32)
    return cands.scores.astype(np.float32)


def merge(
    results: list[ChannelResult], normalisation: Normalisation = "rrf", total: int | None = None
) -> Candidates:
    """Merge channel results into one deduplicated, provenance-carrying candidate set.

    Each channel contributes up to its quota of new items (priority order); when ``total``
    is given, rows still short of it are back-filled with the channels' remaining items,
    best weighted reciprocal rank first (so a channel with too few items leaves its budget
    to the others instead of wasting it), and rows longer than it (quotas summing to more
    than ``total``) are cut to ``total``, the last channels' items first.

    Every channel's items are pooled once and each distinct ``(row, item)`` gets a group id
    (``_Pool``); quotas, back-fill and provenance are then flat array passes over the pool.
    """
    if not results:
        raise ValueError("merge needs at least one channel result")
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique, got {names}")
    batch = results[0].candidates.batch_size
    for res in results:
        if res.candidates.batch_size != batch:
            raise ValueError(
                f"channel {res.name!r} returned {res.candidates.batch_size} rows, not {batch}"
            )
    pool = _Pool.of(results)
    picked = _take_quotas(pool, results)
    if total is not None:  # back-fill short rows, trim long ones (later channels go first)
        picked = _append(pool, picked, _backfill(pool, results, picked, total))
        picked = picked[ragged.position_in_row(pool.offsets_of(picked)) < total]
    offsets = pool.offsets_of(picked)
    first = [pool.first_in(c, picked) for c in range(len(results))]
    ranks, score = _provenance(pool, first, results, normalisation)
    merged = Candidates(
        offsets=offsets,
        item_idx=pool.items[picked],
        scores=score,
        channels=tuple(names),
        source=pool.channel[picked],
        channel_ranks=ranks,
        stage_scores={"recall": score},
        reasons=_reasons(len(picked), results, first, pool),
    )
    return merged.sorted()


@dataclass(frozen=True)
class _Pool:
    """Every channel's items, channel after channel (each grouped by row): ``rows``,
    ``items``, ``channel`` (int16), ``pos`` (rank inside the channel's row), ``start[C+1]``
    (each channel's slice) and ``group`` (the same id for the same ``(row, item)``, in
    ``[0, N)``)."""

    batch: int
    rows: IntArray
    items: IntArray
    channel: npt.NDArray[np.int16]
    pos: IntArray
    start: IntArray
    group: IntArray

    @classmethod
    def of(cls, results: list[ChannelResult]) -> _Pool:
        cands = [r.candidates for r in results]
        rows = np.concatenate([c.row_ids() for c in cands])
        items = np.concatenate([c.item_idx for c in cands])
        lens = [len(c) for c in cands]
        channel = np.repeat(np.arange(len(cands), dtype=np.int16), lens)
        pos = np.concatenate([ragged.position_in_row(c.offsets) for c in cands])
        start = ragged.offsets_from_lengths(lens)
        batch = cands[0].batch_size
        return cls(batch, rows, items, channel, pos, start, _groups(rows, items, batch))

    def offsets_of(self, picked: IntArray) -> IntArray:
        """Offsets of pool elements ``picked`` (grouped by row)."""
        return ragged.offsets_from_row_ids(self.rows[picked], self.batch)

    def first_in(self, c: int, picked: IntArray) -> IntArray:
        """Pool index of the first occurrence in channel ``c`` of each picked element's
        ``(row, item)`` (``-1``: channel ``c`` did not return that item in that row)."""
        lo, hi = int(self.start[c]), int(self.start[c + 1])
        hit = ragged.first_index(self.group[lo:hi], len(self.group))[self.group[picked]]
        return np.where(hit >= 0, hit + lo, -1)


def _groups(rows: IntArray, items: IntArray, batch: int) -> IntArray:
    """A group id in ``[0, N)`` per element, equal for equal ``(row, item)``; negative items
    (padding) are each a group of their own."""
    n = len(items)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    width = max(int(items.max()) + 1, 1)
    ok = items >= 0
    keys = np.where(ok, rows * width + items, 0)
    if ragged.use_dense(batch, width, n, ratio=16):
        table = np.zeros(batch * width, dtype=np.int64)
        table[keys[ok]] = np.flatnonzero(ok)
        group = table[keys]
    else:
        group = np.unique(keys, return_inverse=True)[1].astype(np.int64)
    return np.where(ok, group, np.arange(n))


def _rank_among(keep: BoolArray, rows: IntArray, batch: int) -> IntArray:
    """0-based rank of each element among the ``keep`` elements of its row (rows sorted)."""
    before: IntArray = np.concatenate([[0], np.cumsum(keep)])
    first = ragged.offsets_from_row_ids(rows, batch)[:-1]
    rank: IntArray = before[1:] - 1 - before[first][rows]
    return rank


def _take_quotas(pool: _Pool, results: list[ChannelResult]) -> IntArray:
    """Pool elements the channels contribute, in priority order (each: up to its quota of
    items no earlier channel took), grouped by row: channel order, then rank, per row."""
    taken = np.zeros(len(pool.group), dtype=np.bool_)  # by group
    picked = []
    for c, res in enumerate(results):
        lo, hi = int(pool.start[c]), int(pool.start[c + 1])
        free = ~taken[pool.group[lo:hi]]
        take = free & (_rank_among(free, pool.rows[lo:hi], pool.batch) < res.quota)
        idx = lo + np.flatnonzero(take)
        taken[pool.group[idx]] = True
        picked.append(idx)
    flat = np.concatenate(picked)
    return flat[np.argsort(pool.rows[flat], kind="stable")]


def _append(pool: _Pool, a: IntArray, b: IntArray) -> IntArray:
    """Row-wise concatenation of two row-grouped selections (``a``'s elements first)."""
    flat = np.concatenate([a, b])
    return flat[np.argsort(pool.rows[flat], kind="stable")]


def _backfill(pool: _Pool, results: list[ChannelResult], picked: IntArray, total: int) -> IntArray:
    """Up to ``total - len(row)`` more elements per row from all channels' leftovers, best
    weighted reciprocal rank (among the channel's leftovers) first, one per item."""
    taken = np.zeros(len(pool.group), dtype=np.bool_)
    taken[pool.group[picked]] = True
    left = ~taken[pool.group]
    parts, scores = [], []
    for c, res in enumerate(results):
        lo, hi = int(pool.start[c]), int(pool.start[c + 1])
        keep = left[lo:hi]
        rank = _rank_among(keep, pool.rows[lo:hi], pool.batch)[keep].astype(np.float32)
        parts.append(lo + np.flatnonzero(keep))
        scores.append(res.weight * (1.0 / (RRF_K + rank + 1.0)).astype(np.float32))
    flat = np.concatenate(parts)
    score = np.concatenate(scores)
    order = np.lexsort((-score, pool.rows[flat]))
    flat = flat[order]
    first = ragged.first_index(pool.group[flat], len(pool.group))
    flat = flat[first[pool.group[flat]] == np.arange(len(flat))]  # one per item
    room = np.maximum(total - np.bincount(pool.rows[picked], minlength=pool.batch), 0)
    rows = pool.rows[flat]
    fits = _rank_among(np.ones(len(flat), dtype=np.bool_), rows, pool.batch) < room[rows]
    out: IntArray = flat[fits]
    return out


def _provenance(
    pool: _Pool, first: list[IntArray], results: list[ChannelResult], how: Normalisation
) -> tuple[npt.NDArray[np.int32], FloatArray]:
    """Rank of every merged item in every channel (column ``c``: ``results[c]``, ``-1``
    when absent) and the fused score (weighted normalised channel scores, summed)."""
    n = len(first[0]) if first else 0
    by_channel = np.full((len(results), n), -1, dtype=np.int32)  # a row per channel: flat writes
    fused = np.zeros(n, dtype=np.float32)
    for c, res in enumerate(results):
        found = np.flatnonzero(first[c] >= 0)
        hit = first[c][found]
        by_channel[c, found] = pool.pos[hit]
        fused[found] += res.weight * normalise(res.candidates, how)[hit - int(pool.start[c])]
    return np.ascontiguousarray(by_channel.T), fused


def _reasons(
    n: int, results: list[ChannelResult], first: list[IntArray], pool: _Pool
) -> npt.NDArray[np.object_] | None:
    """Each merged item's reason from the first channel that gave one (``None`` if no
    channel gives reasons)."""
    if all(r.candidates.reasons is None for r in results):
        return None
    out = np.full(n, "", dtype=object)
    for c, res in enumerate(results):
        if res.candidates.reasons is None:
            continue
        fill = (first[c] >= 0) & (out == "")
        out[fill] = res.candidates.reasons[first[c][fill] - int(pool.start[c])]
    return out
