"""Vectorised helpers shared by the strategy channels (``fresh``, ``high_ctr``, ``tag``).

They work on *grouped ranked lists*: items sorted by ``(group, quality)`` and stored CSR-style
as ``offsets[n_groups+1]`` + ``items[M]`` (a group is a category or a tag). A query batch asks
for slices of several lists per row; the slices are gathered without Python loops, and
``finish`` turns the resulting flat ``(row, item, score)`` triples into ``Candidates``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.ragged import IntArray
from funnelrec.types import Candidates, Query

F64 = npt.NDArray[np.float64]


def group_lists(
    item_idx: IntArray, group: IntArray, quality: F64, n_groups: int, per_group: int | None = None
) -> tuple[IntArray, IntArray]:
    """Items of each group, best first: CSR-style ``(offsets[n_groups+1], items[M])``.

    Args:
        item_idx: ``[P]`` item of each (item, group) membership pair.
        group: ``[P]`` group of each pair; negative groups are dropped.
        quality: ``[P]`` ranking key (higher first; ties by item index).
        n_groups: number of groups.
        per_group: keep at most this many items per group (``None``: all).
    """
    valid = group >= 0
    item_idx, group, quality = item_idx[valid], group[valid], quality[valid]
    order = np.lexsort((item_idx, -quality, group))
    offsets = ragged.offsets_from_lengths(np.bincount(group, minlength=n_groups))
    keep = np.ones(len(order), dtype=np.bool_)
    if per_group is not None:
        keep = ragged.position_in_row(offsets) < per_group
        offsets = ragged.offsets_from_lengths(np.minimum(ragged.lengths(offsets), per_group))
    return offsets, item_idx[order][keep].astype(np.int64)


def category_lists(
    items: IntArray, codes: IntArray, n_categories: int, quality: F64, per_category: bool
) -> tuple[IntArray, IntArray]:
    """Ranked lists of ``items`` (best ``quality`` first): group 0 = all of them and, with
    ``per_category``, group ``c + 1`` = those of category ``c`` (``codes[n_items]``, -1 = none).

    Args:
        items: ``[M]`` items to list.
        codes: ``[n_items]`` category code per item.
        n_categories: number of category codes.
        quality: ``[n_items]`` ranking key.
        per_category: also build the per-category lists.
    """
    groups = [np.zeros(len(items), dtype=np.int64)]
    if per_category:
        groups.append(np.where(codes[items] >= 0, codes[items] + 1, -1))
    tiled = np.tile(items, len(groups)).astype(np.int64)
    n_groups = 1 + (n_categories if per_category else 0)
    return group_lists(tiled, np.concatenate(groups), quality[tiled], n_groups)


def list_requests(
    query: Query, item_category: IntArray, per_category: bool, last_n: int, max_groups: int
) -> tuple[IntArray, IntArray]:
    """Which lists each query reads, as ``(row[S], group[S])``: group 0 (all items) for every
    row and, with ``per_category``, group ``c + 1`` for the row's main recent categories."""
    rows = np.arange(query.batch_size, dtype=np.int64)
    groups = np.zeros(query.batch_size, dtype=np.int64)
    if not per_category:
        return rows, groups
    cat_rows, cats = recent_groups(query, item_category, last_n, max_groups)
    return np.concatenate([rows, cat_rows]), np.concatenate([groups, cats + 1])


def take_ranges(starts: IntArray, stops: IntArray, caps: IntArray) -> tuple[IntArray, IntArray]:
    """Flat positions of the slices ``starts[s] : min(stops[s], starts[s] + caps[s])``.

    Returns:
        ``(segment[N], position[N])``: the slice each element comes from and its position in
        the underlying list (slice order kept; rank inside a slice is ``position - starts``).
    """
    lens = np.clip(np.minimum(stops - starts, caps), 0, None).astype(np.int64)
    offsets = ragged.offsets_from_lengths(lens)
    segment = ragged.row_ids(offsets)
    return segment, starts[segment] + ragged.position_in_row(offsets)


def recent_groups(
    query: Query, item_group: IntArray, last_n: int, max_groups: int
) -> tuple[IntArray, IntArray]:
    """Each query's main groups among its last ``last_n`` history items, as ``(row, group)``.

    A row keeps its ``max_groups`` most frequent groups in that window (ties: the most
    recently seen first); pairs come grouped by row, strongest first. History items unknown to
    ``item_group`` (index out of range) or without a group (``-1``) are skipped.
    """
    offsets, items, _ = query.recent_history(last_n)
    rows = ragged.row_ids(offsets)
    known = (items >= 0) & (items < len(item_group))
    rows, groups = rows[known], item_group[items[known]]
    rows, groups = rows[groups >= 0], groups[groups >= 0]
    if len(rows) == 0:
        return rows, groups
    width = int(groups.max()) + 1
    keys = (rows * width + groups)[::-1]  # newest first: return_index finds the last use
    pairs, newest, counts = np.unique(keys, return_index=True, return_counts=True)
    order = np.lexsort((newest, -counts, pairs // width))
    pairs = pairs[order]
    pair_rows = (pairs // width).astype(np.int64)
    keep = ragged.first_k_mask(ragged.offsets_from_row_ids(pair_rows, query.batch_size), max_groups)
    return pair_rows[keep], (pairs % width).astype(np.int64)[keep]


def exclusion_counts(query: Query) -> IntArray:
    """Number of excluded items per query ``[B]`` (extra depth to fetch so ``k`` survive)."""
    return ragged.lengths(query.exclude_offsets)


def finish(
    rows: IntArray, items: IntArray, scores: F64, query: Query, k: int, channel: str
) -> Candidates:
    """Candidates from flat ``(row, item, score)`` triples (any order, duplicates allowed).

    Keeps the best score of each ``(row, item)``, drops the query's exclusions and returns the
    ``k`` best items per row, score descending (scores are compared as the returned float32;
    ties keep input order). One stable int64 sort, then the ``funnelrec.ragged`` lookups
    (dense tables for request-sized batches); no Python loop over rows.
    """
    if len(rows) == 0:
        return Candidates.empty(query.batch_size, channel)
    score32 = scores.astype(np.float32)
    order = np.argsort((rows << 32) | _descending_bits(score32), kind="stable")
    rows, items, score32 = rows[order], items[order], score32[order]
    offsets = ragged.offsets_from_row_ids(rows, query.batch_size)
    keep = ragged.unique_within_rows(offsets, items)  # the first of a row's repeats is its best
    keep &= ~ragged.membership(offsets, items, query.exclude_offsets, query.exclude_items)
    offsets = ragged.offsets_from_row_ids(rows[keep], query.batch_size)
    return Candidates.from_flat(offsets, items[keep], score32[keep], channel).truncate(k)


def _descending_bits(values: npt.NDArray[np.float32]) -> IntArray:
    """Non-negative int64 keys ``< 2**32`` that sort ``values`` (finite float32) descending."""
    bits = values.view(np.uint32).astype(np.int64)
    ascending = np.where(bits >= 1 << 31, 0xFFFFFFFF - bits, bits + (1 << 31))
    return 0xFFFFFFFF - ascending
