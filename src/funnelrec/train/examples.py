"""Training examples for scorers: ``(Query, Candidates, labels)`` built like serving inputs.

* ``impression_examples``: one query per ``(user, timestamp)`` exposure slate; its candidates
  are the exposed items, labelled by ``clicked``; the query's history is the user's behaviour
  strictly before the slate. With ``retrieve`` every exposed item gets the recall provenance
  it has in the recall set of that query (absent items: rank ``-1``, score 0).
* ``recall_examples`` (implicit feedback): for each user, ``cuts`` cut points near the end of
  the time-ordered history; the query's history is everything before the cut, positives are
  the next ``horizon`` items, the candidates are what recall retrieves for that query
  (exposure-consistent negatives, at most ``max_neg`` kept per query; the user's own later
  items are left out, they are not negatives) plus ``n_random`` uniformly drawn items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec import provenance, ragged
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.types import Candidates, Query

RetrieveFn = Callable[[Query], Candidates]
_CHUNK = 1024


@dataclass(frozen=True)
class Examples:
    """Labelled training queries: ``labels[N]`` align with ``candidates``' flat order."""

    query: Query
    candidates: Candidates
    labels: FloatArray


def concat(parts: list[Examples]) -> Examples:
    """Several example sets as one (queries and candidate rows in order)."""
    queries = [e.query for e in parts]

    def cat(name: str) -> npt.NDArray[np.generic]:
        return np.concatenate([getattr(q, name) for q in queries])

    h_len = np.concatenate([ragged.lengths(q.history_offsets) for q in queries])
    e_len = np.concatenate([ragged.lengths(q.exclude_offsets) for q in queries])
    query = Query(
        user_idx=cat("user_idx").astype(np.int64),
        history_offsets=ragged.offsets_from_lengths(h_len),
        history_items=cat("history_items").astype(np.int64),
        history_ts=cat("history_ts").astype(np.float64),
        exclude_offsets=ragged.offsets_from_lengths(e_len),
        exclude_items=cat("exclude_items").astype(np.int64),
        k=queries[0].k,
        now=cat("now").astype(np.float64),
    )
    cands = stack([e.candidates for e in parts])
    return Examples(query, cands, np.concatenate([e.labels for e in parts]))


def prefix_queries(dataset: Dataset, users: IntArray, positions: IntArray) -> Query:
    """One query per ``(users[r], positions[r])``: the user's first ``positions[r]`` items
    (time order) as history and exclusions; ``now`` = time of item ``positions[r]`` (or of
    the last item when the position is past the end)."""
    seq_off, seq_items, seq_ts = dataset.sequences
    starts = seq_off[users]
    offsets = ragged.offsets_from_lengths(positions)
    flat = np.repeat(starts, positions) + ragged.position_in_row(offsets)
    ends = np.maximum(seq_off[users + 1] - 1, starts)
    now = seq_ts[np.minimum(starts + positions, ends)] if len(seq_ts) else np.zeros(len(users))
    return Query(
        user_idx=users.astype(np.int64),
        history_offsets=offsets,
        history_items=seq_items[flat],
        history_ts=seq_ts[flat],
        exclude_offsets=offsets,
        exclude_items=seq_items[flat],
        k=10,
        now=np.asarray(now, dtype=np.float64),
    )


def retrieve_all(retrieve: RetrieveFn, query: Query) -> Candidates:
    """``retrieve`` over ``query`` in chunks, stacked into one ragged batch."""
    rows = np.arange(query.batch_size, dtype=np.int64)
    parts = [retrieve(query.select(rows[i : i + _CHUNK])) for i in range(0, len(rows), _CHUNK)]
    return stack(parts) if parts else Candidates.empty(0)


def stack(parts: list[Candidates]) -> Candidates:
    """Row-wise concatenation of candidate batches with the same channels."""
    first = parts[0]
    lens = np.concatenate([p.lengths() for p in parts])
    ranks = [p.channel_ranks for p in parts]
    keys = set.intersection(*(set(p.stage_scores) for p in parts))
    return Candidates(
        offsets=ragged.offsets_from_lengths(lens),
        item_idx=np.concatenate([p.item_idx for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        channels=first.channels,
        channel_ranks=None if any(r is None for r in ranks) else np.concatenate(ranks),  # type: ignore[arg-type]
        stage_scores={k: np.concatenate([p.stage_scores[k] for p in parts]) for k in keys},
    )


def with_items(cands: Candidates, offsets: IntArray, items: IntArray) -> Candidates:
    """``cands`` with plain items (no provenance: rank ``-1``, scores 0) appended per row."""
    rows = np.concatenate([cands.row_ids(), ragged.row_ids(offsets)])
    order = np.argsort(rows, kind="stable")
    n_new, n_ch = len(items), len(cands.channels)

    def cat(old: npt.NDArray[np.generic], fill: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return np.concatenate([old, fill])[order]

    ranks = None
    if cands.channel_ranks is not None:
        ranks = cat(cands.channel_ranks, np.full((n_new, n_ch), -1, dtype=np.int32))
    zeros = np.zeros(n_new, dtype=np.float32)
    return Candidates(
        offsets=ragged.offsets_from_row_ids(rows[order], cands.batch_size),
        item_idx=cat(cands.item_idx, items.astype(np.int64)).astype(np.int64),
        scores=cat(cands.scores, zeros).astype(np.float32),
        channels=cands.channels,
        channel_ranks=None if ranks is None else ranks.astype(np.int32),
        stage_scores={k: cat(v, zeros).astype(np.float32) for k, v in cands.stage_scores.items()},
    )


def impression_examples(
    dataset: Dataset, retrieve: RetrieveFn | None, max_queries: int, seed: int
) -> Examples:
    """Exposure slates as queries (see module doc)."""
    assert dataset.impressions is not None
    imp = dataset.impressions.sort("user_idx", "timestamp", maintain_order=True)
    users = imp["user_idx"].to_numpy().astype(np.int64)
    ts = imp["timestamp"].to_numpy().astype(np.float64)
    new = np.ones(len(users), dtype=np.bool_)
    new[1:] = (users[1:] != users[:-1]) | (ts[1:] != ts[:-1])
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    keep = _subset(len(first), max_queries, seed)
    rows = np.flatnonzero(np.isin(group, keep))
    group = np.searchsorted(keep, group[rows])
    q_users, q_ts = users[first[keep]], ts[first[keep]]
    query = prefix_queries(dataset, q_users, count_before(dataset, q_users, q_ts))
    query = dataclasses.replace(query, now=q_ts)
    items = imp["item_idx"].to_numpy().astype(np.int64)[rows]
    cands = Candidates.from_flat(
        ragged.offsets_from_row_ids(group, len(keep)), items, np.zeros(len(rows)), None
    )
    if retrieve is not None:
        cands = provenance.transfer(cands, retrieve_all(retrieve, query))
    labels = imp["clicked"].to_numpy().astype(np.float32)[rows]
    return Examples(query, cands, labels)


def recall_examples(
    dataset: Dataset,
    retrieve: RetrieveFn | None,
    *,
    cuts: int,
    horizon: int,
    max_neg: int,
    n_random: int,
    max_queries: int,
    seed: int,
) -> Examples:
    """Cut-point queries over recall candidates plus random items (see module doc)."""
    lens = ragged.lengths(dataset.sequences[0])
    cut = np.arange(cuts, dtype=np.int64)
    users = np.repeat(np.arange(dataset.n_users, dtype=np.int64), cuts)
    pos = np.repeat(lens, cuts) - horizon * (np.tile(cut, dataset.n_users) + 1)
    ok = pos >= 1
    users, pos = users[ok], pos[ok]
    keep = _subset(len(users), max_queries, seed)
    return cut_examples(
        dataset, retrieve, users[keep], pos[keep], horizon=horizon, max_neg=max_neg,
        n_random=n_random, seed=seed,
    )  # fmt: skip


def cut_examples(
    dataset: Dataset,
    retrieve: RetrieveFn | None,
    users: IntArray,
    pos: IntArray,
    *,
    horizon: int,
    max_neg: int,
    n_random: int,
    seed: int,
    now: float | None = None,
) -> Examples:
    """One labelled list per cut ``(users[r], pos[r])``: history = the user's first
    ``pos[r]`` items (time order), positives = the next ``horizon`` items, candidates =
    ``retrieve``'s list for that query (the user's later items dropped, at most ``max_neg``
    negatives kept) plus ``n_random`` random items. Without ``retrieve`` the candidates are
    the positives plus at least 20 random items. ``now``: the queries' request time
    (default: the time of the first positive)."""
    rng = np.random.default_rng(seed)
    lens = ragged.lengths(dataset.sequences[0])
    query = prefix_queries(dataset, users, pos)
    if now is not None:
        query = dataclasses.replace(query, now=np.full(len(users), now, dtype=np.float64))
    n_pos = np.minimum(lens[users] - pos, horizon)
    p_off, p_items = _slices(dataset, users, pos, n_pos)
    if retrieve is not None:
        cands = retrieve_all(retrieve, query)
        # the user's later items (after the positive window) are neither positive nor negative
        later = _slices(dataset, users, pos + n_pos, lens[users] - pos - n_pos)
        is_pos = ragged.membership(cands.offsets, cands.item_idx, p_off, p_items)
        cands = cands.filter(is_pos | ~ragged.membership(cands.offsets, cands.item_idx, *later))
        cands = _cap_negatives(cands, p_off, p_items, max_neg, rng)
    else:
        cands = Candidates.from_flat(p_off, p_items, np.zeros(len(p_items)), None)
        n_random = max(n_random, 20)
    cands = _add_random(cands, query, p_off, p_items, n_random, dataset.n_items, rng)
    labels = ragged.membership(cands.offsets, cands.item_idx, p_off, p_items)
    return Examples(query, cands, labels.astype(np.float32))


def _slices(
    dataset: Dataset, users: IntArray, start: IntArray, length: IntArray
) -> tuple[IntArray, IntArray]:
    """Ragged ``(offsets, items)``: positions ``[start, start + length)`` of each user's
    time-ordered sequence."""
    seq_off, seq_items, _ = dataset.sequences
    offsets = ragged.offsets_from_lengths(np.maximum(length, 0))
    flat = np.repeat(seq_off[users] + start, np.maximum(length, 0))
    return offsets, seq_items[flat + ragged.position_in_row(offsets)]


def _subset(n: int, limit: int, seed: int) -> IntArray:
    """Sorted random ``limit`` of ``range(n)`` (all when ``n <= limit``)."""
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)).astype(np.int64)


def count_before(dataset: Dataset, users: IntArray, ts: npt.NDArray[np.float64]) -> IntArray:
    """Number of each user's events strictly before ``ts`` (per row)."""
    seq_off, _, seq_ts = dataset.sequences
    lo = float(min(seq_ts.min(initial=0.0), ts.min(initial=0.0)))
    span = float(max(seq_ts.max(initial=0.0), ts.max(initial=0.0))) - lo + 1.0
    seq_users = ragged.row_ids(seq_off)
    keys = seq_users * span + (seq_ts - lo)
    found = np.searchsorted(keys, users * span + (ts - lo), side="left")
    return (found - seq_off[users]).astype(np.int64)


def _cap_negatives(
    cands: Candidates, p_off: IntArray, p_items: IntArray, max_neg: int, rng: np.random.Generator
) -> Candidates:
    """Every positive plus at most ``max_neg`` random negatives per row."""
    is_pos = ragged.membership(cands.offsets, cands.item_idx, p_off, p_items)
    priority = np.where(is_pos, -1.0, rng.random(len(cands)))
    rows = cands.row_ids()
    order = np.lexsort((priority, rows))
    rank = np.empty(len(cands), dtype=np.int64)
    rank[order] = ragged.position_in_row(cands.offsets)
    n_pos_row = np.bincount(rows[is_pos], minlength=cands.batch_size)
    return cands.filter(rank < n_pos_row[rows] + max_neg)


def _add_random(
    cands: Candidates,
    query: Query,
    p_off: IntArray,
    p_items: IntArray,
    n: int,
    n_items: int,
    rng: np.random.Generator,
) -> Candidates:
    """Append ``n`` uniform random items per row, minus history, positives and duplicates."""
    if n == 0:
        return cands
    offsets = ragged.offsets_from_lengths(np.full(query.batch_size, n))
    items = rng.integers(0, n_items, size=n * query.batch_size, dtype=np.int64)
    bad = ragged.membership(offsets, items, query.exclude_offsets, query.exclude_items)
    bad |= ragged.membership(offsets, items, p_off, p_items)
    bad |= ragged.membership(offsets, items, cands.offsets, cands.item_idx)
    bad |= ~ragged.unique_within_rows(offsets, items)
    rows = ragged.row_ids(offsets)[~bad]
    return with_items(cands, ragged.offsets_from_row_ids(rows, query.batch_size), items[~bad])
