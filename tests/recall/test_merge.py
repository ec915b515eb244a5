"""Channel merge: quotas, dedup, provenance, fused scores."""

from __future__ import annotations

import numpy as np

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
