"""Channel provenance, matched by channel id — never by column position.

A merged ``Candidates`` batch carries ``channels`` (names) and ``channel_ranks[N, C]``:
column ``j`` is the 0-based rank of each item in the channel named ``channels[j]`` (``-1``
when that channel did not return it). Everything that writes or reads that matrix goes
through this module, so a channel that returns nothing for a whole batch (or is missing
from a batch) is an all ``-1`` column under its own name and never shifts the others:

* ``locate`` / ``match_channels``: where each ``(row, item)`` sits in other candidate sets;
* ``channel_ranks``: the ``[N, C]`` rank matrix for a list of channel names (merge);
* ``transfer``: give arbitrary candidates the provenance their items have in a merged set
  (training examples, funnel evaluation over the whole catalogue);
* ``ranks_for``: the rank columns of a fixed list of channel names (ranker features);
* ``found_by`` / ``channel_sets``: channel names per item (trace, ``/recommend``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.types import Candidates

RankArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Match:
    """Where the flat items of one batch sit in another: ``found[N]`` and ``src[N]`` (flat
    position in the other batch; meaningful only where ``found``)."""

    found: BoolArray
    src: IntArray


def locate(offsets: IntArray, items: IntArray, ref: Candidates) -> Match:
    """For every flat ``(row, item)`` of ``(offsets, items)``: is the item in the same row of
    ``ref``, and at which flat position (its first occurrence). Rows must correspond (same
    batch size)."""
    if len(offsets) != len(ref.offsets):
        raise ValueError(f"row counts differ: {len(offsets) - 1} vs {ref.batch_size}")
    found, src = ragged.find(offsets, items, ref.offsets, ref.item_idx)
    return Match(found, src)


def match_channels(
    offsets: IntArray, items: IntArray, channels: Mapping[str, Candidates]
) -> dict[str, Match]:
    """``locate`` against every channel, keyed by channel id (empty channels included)."""
    return {name: locate(offsets, items, cands) for name, cands in channels.items()}


def channel_ranks(
    matches: Mapping[str, Match], channels: Mapping[str, Candidates], names: Sequence[str]
) -> RankArray:
    """``[N, len(names)]``: column ``j`` is the rank of each item in channel ``names[j]``
    (``-1``: not found, or no such channel)."""
    n = len(next(iter(matches.values())).found) if matches else 0
    out = np.full((n, len(names)), -1, dtype=np.int32)
    for j, name in enumerate(names):
        if name not in matches:
            continue
        m, cands = matches[name], channels[name]
        out[m.found, j] = ragged.position_in_row(cands.offsets)[m.src[m.found]]
    return out


def ranks_for(candidates: Candidates, names: Sequence[str]) -> npt.NDArray[np.int64]:
    """``[N, len(names)]`` rank of each candidate in each named channel, looked up by name
    in ``candidates.channels`` (``-1``: absent, or the channel is not in the batch)."""
    out = np.full((len(candidates), len(names)), -1, dtype=np.int64)
    if candidates.channel_ranks is None:
        return out
    _check(candidates)
    for j, name in enumerate(names):
        if name in candidates.channels:
            out[:, j] = candidates.channel_ranks[:, candidates.channels.index(name)]
    return out


def transfer(cands: Candidates, merged: Candidates) -> Candidates:
    """``cands`` with the channel ranks and ``recall`` score their items have in ``merged``
    (same rows; items ``merged`` lacks get rank ``-1`` everywhere and score 0)."""
    m = locate(cands.offsets, cands.item_idx, merged)
    ranks = np.full((len(cands), len(merged.channels)), -1, dtype=np.int32)
    if merged.channel_ranks is not None:
        _check(merged)
        ranks[m.found] = merged.channel_ranks[m.src[m.found]]
    score = np.zeros(len(cands), dtype=np.float32)
    if "recall" in merged.stage_scores:
        score[m.found] = merged.stage_scores["recall"][m.src[m.found]]
    return dataclasses.replace(
        cands, channels=merged.channels, channel_ranks=ranks, stage_scores={"recall": score}
    )


def found_by(candidates: Candidates, i: int) -> dict[str, int]:
    """``{channel name: rank}`` of the channels that found flat item ``i``."""
    if candidates.channel_ranks is None:
        return {}
    _check(candidates)
    row = candidates.channel_ranks[i]
    return {candidates.channels[c]: int(row[c]) for c in np.flatnonzero(row >= 0)}


def channel_sets(candidates: Candidates) -> list[list[str]]:
    """Names of the channels that found each flat item (the contributing channel alone when
    there is no provenance matrix). Items with the same set share one list object."""
    if candidates.channel_ranks is None:
        return [[n] if n else [] for n in candidates.source_names()]
    _check(candidates)
    found = candidates.channel_ranks >= 0
    masks = (found.astype(np.int64) << np.arange(found.shape[1], dtype=np.int64)).sum(axis=1)
    distinct, inverse = np.unique(masks, return_inverse=True)
    names = [[c for j, c in enumerate(candidates.channels) if (int(m) >> j) & 1] for m in distinct]
    return [names[i] for i in inverse.tolist()]


def _check(candidates: Candidates) -> None:
    assert candidates.channel_ranks is not None
    shape = candidates.channel_ranks.shape
    if shape != (len(candidates), len(candidates.channels)):
        raise ValueError(
            f"channel_ranks has shape {shape}, expected "
            f"({len(candidates)}, {len(candidates.channels)}) for channels {candidates.channels}"
        )
