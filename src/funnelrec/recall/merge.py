"""Merge recall channels: per-channel quotas, dedup, cross-channel scores, provenance.

Channels are taken in priority order (config order). Each contributes up to its quota of
items not already contributed by an earlier channel (channels are asked for extra items so
duplicates do not eat the quota). Every merged item records its 0-based rank in every
channel that found it (``channel_ranks[N, C]``, ``-1`` if absent) and its contributing
channel (``source``). The merged score sums each channel's normalised score times the
channel's weight, so items found by several channels rise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.ragged import FloatArray, IntArray
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
        np.minimum.at(lo, rows, cands.scores)
        np.maximum.at(hi, rows, cands.scores)
        span = (hi - lo)[rows]
        out = np.where(span > 0, (cands.scores - lo[rows]) / np.where(span > 0, span, 1.0), 1.0)
        return out.astype(np.float32)
    return cands.scores.astype(np.float32)


def merge(results: list[ChannelResult], normalisation: Normalisation = "rrf") -> Candidates:
    """Merge channel results into one deduplicated, provenance-carrying candidate set."""
    if not results:
        raise ValueError("merge needs at least one channel result")
    batch = results[0].candidates.batch_size
    names = tuple(r.name for r in results)
    taken = Candidates.empty(batch)
    pieces_rows: list[IntArray] = []
    pieces_items: list[IntArray] = []
    pieces_source: list[npt.NDArray[np.int16]] = []
    for c, res in enumerate(results):
        cands = res.candidates
        if cands.batch_size != batch:
            raise ValueError(f"channel {res.name!r} returned {cands.batch_size} rows, not {batch}")
        fresh = cands.filter(
            ~ragged.membership(cands.offsets, cands.item_idx, taken.offsets, taken.item_idx)
        )
        fresh = fresh.truncate(res.quota)
        pieces_rows.append(fresh.row_ids())
        pieces_items.append(fresh.item_idx)
        pieces_source.append(np.full(len(fresh), c, dtype=np.int16))
        taken = _append(taken, fresh)
    rows = np.concatenate(pieces_rows)
    order = np.argsort(rows, kind="stable")
    offsets = ragged.offsets_from_row_ids(rows[order], batch)
    items = np.concatenate(pieces_items)[order]
    source = np.concatenate(pieces_source)[order]
    ranks, score = _provenance(offsets, items, results, normalisation)
    merged = Candidates(
        offsets=offsets,
        item_idx=items,
        scores=score,
        channels=names,
        source=source,
        channel_ranks=ranks,
        stage_scores={"recall": score},
    )
    return merged.sorted()


def _append(a: Candidates, b: Candidates) -> Candidates:
    rows = np.concatenate([a.row_ids(), b.row_ids()])
    items = np.concatenate([a.item_idx, b.item_idx])
    order = np.argsort(rows, kind="stable")
    return Candidates(
        offsets=ragged.offsets_from_row_ids(rows[order], a.batch_size),
        item_idx=items[order],
        scores=np.zeros(len(items), dtype=np.float32),
    )


def _provenance(
    offsets: IntArray, items: IntArray, results: list[ChannelResult], how: Normalisation
) -> tuple[npt.NDArray[np.int32], FloatArray]:
    """Rank of every merged item in every channel, and the fused score."""
    ranks = np.full((len(items), len(results)), -1, dtype=np.int32)
    fused = np.zeros(len(items), dtype=np.float32)
    if len(items) == 0:
        return ranks, fused
    width = (
        int(max([int(items.max())] + [int(r.candidates.item_idx.max(initial=0)) for r in results]))
        + 1
    )
    keys = ragged.row_ids(offsets) * width + items
    for c, res in enumerate(results):
        cands = res.candidates
        if len(cands) == 0:
            continue
        ckeys = cands.row_ids() * width + cands.item_idx
        order = np.argsort(ckeys, kind="stable")
        pos = np.searchsorted(ckeys[order], keys)
        pos = np.minimum(pos, len(ckeys) - 1)
        found = ckeys[order][pos] == keys
        src = order[pos]
        ranks[found, c] = ragged.position_in_row(cands.offsets)[src[found]]
        fused[found] += res.weight * normalise(cands, how)[src[found]]
    return ranks, fused
