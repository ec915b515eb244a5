"""Channel merge: quotas, dedup, provenance, fused scores."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.recall.merge import ChannelResult, merge, normalise
from funnelrec.types import Candidates


def chan(rows: list[list[int]], name: str) -> Candidates:
    off, items = ragged.from_lists(rows)
    scores = -ragged.position_in_row(off).astype(np.float32)  # already sorted
    return Candidates.from_flat(off, items, scores, name)


def test_quota_dedup_and_provenance() -> None:
    a = chan([[1, 2, 3, 4], [7]], "a")
    b = chan([[2, 5, 6, 1], [7, 8]], "b")
    m = merge([ChannelResult("a", a, quota=2), ChannelResult("b", b, quota=2)])
    rows = [set(r) for r in m.to_lists()]
    # a contributes 1, 2; b skips 2 (taken) and contributes 5, 6 — quotas count unique items
    assert rows[0] == {1, 2, 5, 6}
    assert rows[1] == {7, 8}
    assert m.channels == ("a", "b")
    assert m.channel_ranks is not None
    lookup = {int(i): r.tolist() for i, r in zip(m.item_idx[:4], m.channel_ranks[:4], strict=True)}
    assert lookup[2] == [1, 0]  # found by both: rank 1 in a, rank 0 in b
    assert lookup[5] == [-1, 1]
    # found by two channels ranks first
    assert m.to_lists()[0][0] == 2


def test_normalise_minmax_is_the_per_row_formula_with_empty_rows_and_nans() -> None:
    """Per row ``(s - min) / (max - min)`` (1 when all equal), empty rows anywhere."""
    rng = np.random.default_rng(0)
    for trial in range(100):
        lens = rng.integers(0, 5, 6)
        offsets = np.concatenate([[0], np.cumsum(lens)])
        scores = rng.integers(0, 4, int(offsets[-1])).astype(np.float32)
        if trial % 4 == 0 and len(scores):
            scores[rng.integers(0, len(scores))] = np.nan
        got = normalise(
            Candidates.from_flat(offsets, np.arange(len(scores)), scores, "c"), "minmax"
        )
        for b in range(6):
            row = scores[offsets[b] : offsets[b + 1]]
            lo, hi = (row.min(), row.max()) if len(row) else (0.0, 0.0)
            want = (row - lo) / (hi - lo) if hi - lo > 0 else np.ones_like(row)
            assert np.array_equal(got[offsets[b] : offsets[b + 1]], want, equal_nan=True)


def test_normalise_minmax_and_rank() -> None:
    c = Candidates.from_flat(
        np.array([0, 3, 4]), np.array([1, 2, 3, 4]), np.array([10.0, 5.0, 0.0, 7.0]), "x"
    )
    assert normalise(c, "minmax").tolist() == [1.0, 0.5, 0.0, 1.0]
    assert np.allclose(normalise(c, "rank"), [1.0, 2 / 3, 1 / 3, 1.0])


def test_backfill_fills_total_from_leftovers() -> None:
    a = chan([[1, 2, 3, 4, 5]], "a")  # a has more than its quota
    b = chan([[6]], "b")  # b cannot fill its quota of 3
    m = merge([ChannelResult("a", a, quota=2), ChannelResult("b", b, quota=3)], total=5)
    assert set(m.to_lists()[0]) == {1, 2, 6, 3, 4}
    assert m.source is not None
    by_item = dict(zip(m.item_idx.tolist(), m.source.tolist(), strict=True))
    assert by_item[3] == 0 and by_item[6] == 1
    no_fill = merge([ChannelResult("a", a, quota=2), ChannelResult("b", b, quota=3)])
    assert len(no_fill) == 3


def test_rows_never_longer_than_total() -> None:
    a = chan([list(range(10))], "a")
    b = chan([list(range(10, 20))], "b")
    m = merge([ChannelResult("a", a, quota=6), ChannelResult("b", b, quota=6)], total=10)
    assert m.lengths().tolist() == [10]
    # the over-committed budget is cut from the last channel: a keeps its 6, b gets 4
    assert set(m.to_lists()[0]) == set(range(6)) | set(range(10, 14))


def _reference_row(
    rows: list[tuple[list[int], np.ndarray]],
    quotas: list[int],
    weights: list[float],
    how: str,
    norms: list[np.ndarray],
    total: int | None,
) -> tuple[list[int], list[int], list[list[int]], list[float]]:
    """One row merged item by item, as the module doc describes: quotas in channel order
    (items an earlier channel took do not count), back-fill by weighted reciprocal rank
    among each channel's leftovers, cut to ``total``; ranks and fused scores by item."""
    taken: list[int] = []
    source: list[int] = []
    for c, (items, _) in enumerate(rows):
        before = set(taken)
        fresh = [i for i in items if i not in before][: quotas[c]]
        taken += fresh
        source += [c] * len(fresh)
    if total is not None:
        pool = []
        for c, (items, _) in enumerate(rows):
            left = [i for i in items if i not in set(taken)]
            rrf = (1.0 / (60.0 + np.arange(len(left), dtype=np.float32) + 1.0)).astype(np.float32)
            pool += [
                (-(weights[c] * r), len(pool) + n, i, c)
                for n, (i, r) in enumerate(zip(left, rrf, strict=True))
            ]
        extra: list[tuple[int, int]] = []
        for _, _, i, c in sorted(pool):
            if i not in {e[0] for e in extra} and len(extra) < max(total - len(taken), 0):
                extra.append((i, c))
        taken += [i for i, _ in extra]
        source += [c for _, c in extra]
        taken, source = taken[:total], source[:total]
    ranks, fused = [], []
    for i in taken:
        r = [items.index(i) if i in items else -1 for items, _ in rows]
        score = np.float32(0.0)
        for c, rc in enumerate(r):
            if rc >= 0:
                score = np.float32(score + np.float32(weights[c] * norms[c][rc]))
        ranks.append(r)
        fused.append(float(score))
    return taken, source, ranks, fused


@pytest.mark.parametrize("dense", [True, False])
def test_merge_matches_a_per_row_reference(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random channels (overlapping items, empty rows, tied scores), every normalisation,
    with and without ``total``: same items, order, sources, ranks and scores as merging each
    row by hand (on both lookup paths of ``funnelrec.ragged``)."""
    if not dense:
        monkeypatch.setattr(ragged, "DENSE_MAX", 0)
    rng = np.random.default_rng(7)
    for case in range(60):
        n_channels, batch = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        chans = []
        for _ in range(n_channels):
            lists = [
                rng.choice(12, int(rng.integers(0, 8)), replace=False).tolist()
                for _ in range(batch)
            ]
            off, items = ragged.from_lists(lists)
            scores = np.round(rng.normal(size=len(items)), 1).astype(np.float32)
            chans.append(Candidates.from_flat(off, items, scores, "c").sorted())
        quotas = [int(q) for q in rng.integers(0, 5, n_channels)]
        weights = [float(w) for w in rng.choice([0.5, 1.0, 3.0], n_channels)]
        how = ["rrf", "minmax", "rank", "none"][case % 4]
        total = None if case % 3 == 0 else int(rng.integers(1, 10))
        results = [ChannelResult(f"c{c}", ch, quotas[c], weights[c]) for c, ch in enumerate(chans)]
        merged = merge(results, how, total)  # type: ignore[arg-type]
        assert merged.channel_ranks is not None and merged.source is not None
        norms = [normalise(ch, how) for ch in chans]  # type: ignore[arg-type]
        for b in range(batch):
            rows = [(ch.row(b)[0].tolist(), ch.row(b)[1]) for ch in chans]
            row_norms = [
                n[ch.offsets[b] : ch.offsets[b + 1]] for n, ch in zip(norms, chans, strict=True)
            ]
            items, source, ranks, fused = _reference_row(
                rows, quotas, weights, how, row_norms, total
            )
            order = sorted(range(len(items)), key=lambda j: -fused[j])  # stable: ties keep order
            lo, hi = merged.offsets[b], merged.offsets[b + 1]
            assert merged.item_idx[lo:hi].tolist() == [items[j] for j in order]
            assert merged.source[lo:hi].tolist() == [source[j] for j in order]
            assert merged.channel_ranks[lo:hi].tolist() == [ranks[j] for j in order]
            assert merged.scores[lo:hi].tolist() == [fused[j] for j in order]
