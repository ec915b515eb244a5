"""Per-interest retrieval and the quota merge shared by the multi-interest channels.

Every interest of a user searches the item index on its own (with the query's exclusions);
the lists are merged round-robin (``merge = "quota"``: each interest's best remaining item
in turn, duplicates kept at their best rank), so with ``n`` interests every interest gets
``k / n`` of the budget and an interest that runs dry leaves its share to the others; or by
raw score (``merge = "score"``). ``reasons`` name the interest that found each item.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.index.base import VectorIndex
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.types import Candidates, Query

InterestMerge = Literal["quota", "score"]


def search_interests(
    index: VectorIndex, vectors: npt.NDArray[np.float32], query: Query, k: int
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """``[R, K, k]`` ids and scores for ``vectors`` ``[R, K, d]`` of ``query``'s ``R`` rows."""
    r, n_int, d = vectors.shape
    rep = query.select(np.repeat(np.arange(r, dtype=np.int64), n_int))
    ids, scores = index.search(
        vectors.reshape(r * n_int, d), k, rep.exclude_offsets, rep.exclude_items
    )
    return ids.reshape(r, n_int, -1), scores.reshape(r, n_int, -1)


def merge_interests(
    ids: IntArray,
    scores: npt.NDArray[np.float32],
    valid: BoolArray,
    k: int,
    how: InterestMerge = "quota",
) -> tuple[IntArray, npt.NDArray[np.float32], IntArray, IntArray]:
    """Merge per-interest lists ``[R, K, k']`` into at most ``k`` distinct items per row.

    Args:
        ids, scores: per-interest results (``-1`` padding); ``valid``: ``[R, K]`` usable
            interests.
        how: ``quota`` (round-robin; score = ``1 / (1 + rank within its interest)``) or
            ``score`` (best inner product first; score = inner product).

    Returns:
        Dense ``[R, k]`` items (``-1`` padded), scores, finding interest and its rank there.
    """
    r, n_int, width = ids.shape
    row = np.repeat(np.arange(r), n_int * width)
    interest = np.tile(np.repeat(np.arange(n_int), width), r)
    rank = np.tile(np.arange(width), r * n_int)
    item, score = ids.reshape(-1), scores.reshape(-1)
    keep = (item >= 0) & np.repeat(valid.reshape(-1), width)
    row, interest, rank, item = row[keep], interest[keep], rank[keep], item[keep]
    score = score[keep]
    # one entry per (row, item): its best rank (then best score) across interests
    order = np.lexsort((-score, rank, item, row))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (row[order][1:] != row[order][:-1]) | (item[order][1:] != item[order][:-1])
    sel = order[first]
    row, interest, rank, item, score = row[sel], interest[sel], rank[sel], item[sel], score[sel]
    # rank within the interest after de-duplication
    order = np.lexsort((rank, interest, row))
    group = row[order] * n_int + interest[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    new_rank = np.empty(len(order), dtype=np.int64)
    new_rank[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    if how == "quota":
        final = np.lexsort((-score, new_rank, row))
        out_score = (1.0 / (1.0 + new_rank)).astype(np.float32)
    else:
        final = np.lexsort((-score, row))
        out_score = score.astype(np.float32)
    offsets = ragged.offsets_from_row_ids(row[final], r)
    top = final[ragged.first_k_mask(offsets, k)]
    off = ragged.offsets_from_row_ids(row[top], r)

    def dense(a: npt.NDArray[np.generic], fill: float) -> npt.NDArray[np.generic]:
        return ragged.to_dense(off, a[top], k, fill)

    return (
        dense(item, -1).astype(np.int64),
        dense(out_score, -np.inf).astype(np.float32),
        dense(interest, -1).astype(np.int64),
        dense(new_rank, -1).astype(np.int64),
    )


def interest_candidates(
    batch_size: int,
    rows: IntArray,
    merged: tuple[IntArray, npt.NDArray[np.float32], IntArray, IntArray],
    n_interests: int,
    channel: str,
) -> Candidates:
    """``Candidates`` for the whole batch (rows not in ``rows`` empty), with reasons
    ``"interest j/K #r"`` naming the interest (1-based) that found each item and its rank."""
    items, scores, interest, rank = merged
    width = items.shape[1]
    full = np.full((batch_size, width), -1, dtype=np.int64)
    full_s = np.full((batch_size, width), -np.inf, dtype=np.float32)
    full_i, full_r = full.copy(), full.copy()
    full[rows], full_s[rows], full_i[rows], full_r[rows] = items, scores, interest, rank
    cands = Candidates.from_dense(full, full_s, channel)
    ok = (full >= 0) & np.isfinite(full_s)
    labels = np.char.add(
        np.char.add(f"{channel} interest ", (full_i[ok] + 1).astype(str)),
        np.char.add(f"/{n_interests} #", (full_r[ok] + 1).astype(str)),
    )
    return dataclasses.replace(cands, reasons=labels.astype(object))
