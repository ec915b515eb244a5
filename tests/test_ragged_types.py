"""Ragged helpers and the Candidates/Query containers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.types import Candidates, Query, Slate


def test_membership_and_unique() -> None:
    off, vals = ragged.from_lists([[1, 2, 3], [], [3, 3, 4]])
    ref_off, ref_vals = ragged.from_lists([[3], [1], [4, 9]])
    assert ragged.membership(off, vals, ref_off, ref_vals).tolist() == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert ragged.unique_within_rows(off, vals).tolist() == [True] * 4 + [False, True]


def test_candidates_sorted_truncate_and_take() -> None:
    c = Candidates.from_flat(
        np.array([0, 3, 5]), np.array([5, 6, 7, 8, 9]), np.array([0.1, 0.9, 0.5, 0.2, 0.3]), "ch"
    )
    s = c.sorted()
    assert s.to_lists() == [[6, 7, 5], [9, 8]]
    assert s.truncate(1).to_lists() == [[6], [9]]
    assert s.source_names() == ["ch"] * 5
    with pytest.raises(ValueError, match="grouped by row"):
        c.take(np.array([3, 0]))


def test_candidates_filter_and_sorted_equal_take_on_random_batches() -> None:
    """``filter`` and ``sorted`` derive the new offsets without ``take``'s row ids; they
    give what ``take`` gives (empty rows, all-dropped rows and ties included)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        lens = rng.integers(0, 6, 7)
        offsets = np.concatenate([[0], np.cumsum(lens)])
        n = int(offsets[-1])
        c = Candidates.from_flat(
            offsets, rng.integers(0, 9, n), rng.integers(0, 3, n).astype(np.float32), "ch"
        )
        c = dataclasses.replace(c, stage_scores={"r": rng.normal(size=n).astype(np.float32)})
        keep = rng.random(n) < 0.5
        for got, want in (
            (c.filter(keep), c.take(np.flatnonzero(keep))),
            (c.sorted(), c.take(ragged.sort_within_rows(c.offsets, c.scores))),
        ):
            assert got.offsets.tolist() == want.offsets.tolist()
            assert got.item_idx.tolist() == want.item_idx.tolist()
            assert got.stage_scores["r"].tolist() == want.stage_scores["r"].tolist()
    with pytest.raises(ValueError, match="one flag per element: 2 for 5"):
        Candidates.from_flat(np.array([0, 5]), np.arange(5), np.ones(5), "ch").filter(
            np.array([True, False])
        )


def test_candidates_excluding_and_dense() -> None:
    c = Candidates.from_dense(
        np.array([[1, 2, -1], [3, 4, 5]]), np.array([[3.0, 2.0, 0.0], [3.0, 2.0, 1.0]])
    )
    q = Query.from_lists([0, 1], [[], []], k=2, exclude=[[2], [3, 5]])
    kept = c.excluding(q)
    assert kept.to_lists() == [[1], [4]]
    assert kept.dense(2).tolist() == [[1, -1], [4, -1]]


def test_with_scores_records_stage() -> None:
    c = Candidates.from_flat(np.array([0, 2]), np.array([1, 2]), np.array([1.0, 2.0]), None)
    d = c.with_scores(np.array([5.0, 6.0]), stage="rank")
    assert d.stage_scores["rank"].tolist() == [5.0, 6.0]
    assert isinstance(Slate.of(d), Slate)


def test_inconsistent_candidates_rejected() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        Candidates(
            offsets=np.array([0, 3]),
            item_idx=np.array([1, 2]),
            scores=np.array([1.0, 2.0], dtype=np.float32),
        )


def test_query_recent_history_and_select() -> None:
    q = Query.from_lists([0, 1, -1], [[1, 2, 3, 4], [5], []], k=3)
    off, items, _ = q.recent_history(2)
    assert off.tolist() == [0, 2, 3, 3]
    assert items.tolist() == [3, 4, 5]
    sub = q.select(np.array([1, 0]))
    assert sub.user_idx.tolist() == [1, 0]
    assert sub.history(1).tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="k must be"):
        Query.from_lists([0], [[]], k=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_within_rows_matches_lexsort(dtype: type) -> None:
    """Descending per row, stable for ties (incl. -0.0 == 0.0), -inf before NaN (last)."""
    rng = np.random.default_rng(0)
    offsets = ragged.offsets_from_lengths(rng.integers(0, 30, 40))
    scores = rng.integers(-3, 4, offsets[-1]).astype(dtype)
    scores[rng.random(len(scores)) < 0.1] = -0.0
    scores[rng.random(len(scores)) < 0.05] = -np.inf
    scores[rng.random(len(scores)) < 0.05] = np.nan
    reference = np.lexsort((-scores.astype(np.float64), ragged.row_ids(offsets)))
    assert ragged.sort_within_rows(offsets, scores).tolist() == reference.tolist()


def _random_ragged(rng: np.random.Generator, rows: int, width: int) -> tuple:
    """Ragged rows of values in ``[-1, width)`` (repeats and -1 padding included)."""
    offsets = ragged.offsets_from_lengths(rng.integers(0, 12, rows))
    return offsets, rng.integers(-1, width, offsets[-1]).astype(np.int64)


def _per_row(offsets: np.ndarray, values: np.ndarray) -> list[list[int]]:
    return [values[offsets[b] : offsets[b + 1]].tolist() for b in range(len(offsets) - 1)]


@pytest.mark.parametrize("dense", [True, False])
def test_lookups_match_a_per_row_reference(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``find``, ``membership`` and ``unique_within_rows`` give the per-row set answers on
    both paths (dense table for small batches, sorted keys otherwise): first occurrences,
    negative values never match and are always kept."""
    if not dense:
        monkeypatch.setattr(ragged, "DENSE_MAX", 0)
    rng = np.random.default_rng(1)
    for width in (3, 50):
        off, vals = _random_ragged(rng, 9, width)
        ref_off, ref_vals = _random_ragged(rng, 9, width)
        found, pos = ragged.find(off, vals, ref_off, ref_vals)
        member = ragged.membership(off, vals, ref_off, ref_vals)
        unique = ragged.unique_within_rows(off, vals)
        flat = 0
        for row, ref_row, start in zip(
            _per_row(off, vals), _per_row(ref_off, ref_vals), ref_off[:-1], strict=True
        ):
            seen: set[int] = set()
            for v in row:
                hit = v >= 0 and v in ref_row
                assert found[flat] == hit and member[flat] == hit
                if hit:
                    assert pos[flat] == start + ref_row.index(v)
                assert unique[flat] == (v < 0 or v not in seen)
                seen.add(v)
                flat += 1


def test_first_index_keeps_the_first_of_repeated_keys() -> None:
    table = ragged.first_index(np.array([4, 1, 4, 4, 0, 1]), 6)
    assert table.tolist() == [4, 1, -1, -1, 0, -1]
