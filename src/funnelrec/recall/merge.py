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

from funnelrec import provenance, ragged
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


def merge(
    results: list[ChannelResult], normalisation: Normalisation = "rrf", total: int | None = None
) -> Candidates:
    """Merge channel results into one deduplicated, provenance-carrying candidate set.

    Each channel contributes up to its quota of new items (priority order); when ``total``
    is given, rows still short of it are back-filled with the channels' remaining items,
    best weighted reciprocal rank first (so a channel with too few items leaves its budget
    to the others instead of wasting it), and rows longer than it (quotas summing to more
    than ``total``) are cut to ``total``, the last channels' items first.
    """
    if not results:
        raise ValueError("merge needs at least one channel result")
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique, got {names}")
    batch = results[0].candidates.batch_size
    taken = _tagged(Candidates.empty(batch), 0)
    for c, res in enumerate(results):
        cands = res.candidates
        if cands.batch_size != batch:
            raise ValueError(f"channel {res.name!r} returned {cands.batch_size} rows, not {batch}")
        taken = _append(taken, _tagged(_not_in(cands, taken).truncate(res.quota), c))
    if total is not None:  # back-fill short rows, trim long ones (later channels go first)
        taken = _append(taken, _backfill(results, taken, total)).truncate(total)
    ranks, score, matches = _provenance(taken.offsets, taken.item_idx, results, normalisation)
    merged = Candidates(
        offsets=taken.offsets,
        item_idx=taken.item_idx,
        scores=score,
        channels=tuple(r.name for r in results),
        source=taken.source,
        channel_ranks=ranks,
        stage_scores={"recall": score},
        reasons=_reasons(len(taken), results, matches),
    )
    return merged.sorted()


def _tagged(cands: Candidates, channel: int) -> Candidates:
    """Plain candidates whose ``source`` is ``channel`` for every item."""
    return Candidates(
        offsets=cands.offsets,
        item_idx=cands.item_idx,
        scores=cands.scores,
        source=np.full(len(cands), channel, dtype=np.int16),
    )


def _not_in(cands: Candidates, taken: Candidates) -> Candidates:
    return cands.filter(
        ~ragged.membership(cands.offsets, cands.item_idx, taken.offsets, taken.item_idx)
    )


def _append(a: Candidates, b: Candidates) -> Candidates:
    """Row-wise concatenation (``a``'s items first in each row), sources carried along."""
    rows = np.concatenate([a.row_ids(), b.row_ids()])
    order = np.argsort(rows, kind="stable")
    assert a.source is not None and b.source is not None
    return Candidates(
        offsets=ragged.offsets_from_row_ids(rows[order], a.batch_size),
        item_idx=np.concatenate([a.item_idx, b.item_idx])[order],
        scores=np.concatenate([a.scores, b.scores])[order],
        source=np.concatenate([a.source, b.source])[order],
    )


def _backfill(results: list[ChannelResult], taken: Candidates, total: int) -> Candidates:
    """Up to ``total - len(row)`` more items per row from all channels' leftovers."""
    parts = [_not_in(r.candidates, taken) for r in results]
    rows = np.concatenate([p.row_ids() for p in parts])
    score = np.concatenate(
        [r.weight * normalise(p, "rrf") for r, p in zip(results, parts, strict=True)]
    )
    order = np.lexsort((-score, rows))
    pool = Candidates(
        offsets=ragged.offsets_from_row_ids(rows[order], taken.batch_size),
        item_idx=np.concatenate([p.item_idx for p in parts])[order],
        scores=score[order].astype(np.float32),
        source=np.concatenate([np.full(len(p), c, dtype=np.int16) for c, p in enumerate(parts)])[
            order
        ],
    )
    pool = pool.filter(ragged.unique_within_rows(pool.offsets, pool.item_idx))
    room = np.maximum(total - taken.lengths(), 0)
    return pool.filter(ragged.position_in_row(pool.offsets) < room[pool.row_ids()])


def _provenance(
    offsets: IntArray, items: IntArray, results: list[ChannelResult], how: Normalisation
) -> tuple[npt.NDArray[np.int32], FloatArray, dict[str, provenance.Match]]:
    """Rank of every merged item in every channel (by channel id), the fused score, and
    where each channel found the merged items."""
    channels = {r.name: r.candidates for r in results}
    matches = provenance.match_channels(offsets, items, channels)
    ranks = provenance.channel_ranks(matches, channels, [r.name for r in results])
    fused = np.zeros(len(items), dtype=np.float32)
    for res in results:
        m = matches[res.name]
        fused[m.found] += res.weight * normalise(res.candidates, how)[m.src[m.found]]
    return ranks, fused, matches


def _reasons(
    n: int, results: list[ChannelResult], matches: dict[str, provenance.Match]
) -> npt.NDArray[np.object_] | None:
    """Each merged item's reason from the first channel that gave one (``None`` if no
    channel gives reasons)."""
    if all(r.candidates.reasons is None for r in results):
        return None
    out = np.full(n, "", dtype=object)
    for res in results:
        if res.candidates.reasons is None:
            continue
        m = matches[res.name]
        fill = m.found & (out == "")
        out[fill] = res.candidates.reasons[m.src[fill]]
    return out
