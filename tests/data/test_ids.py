"""IdMap: first-appearance order, strings vs ints, unknown ids, JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec.data.ids import IdMap
from funnelrec.errors import UnknownIdError


def test_first_appearance_order_and_lookup() -> None:
    m = IdMap(["b", "a", "b"], name="user_id")
    assert m.ids == ["b", "a"]
    assert m.lookup(["a", "zzz"]).tolist() == [1, -1]
    with pytest.raises(UnknownIdError, match="unknown user_id: 'zzz'"):
        m.index("zzz")


def test_array_path_matches_list_path() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 50, 500)
    a, b = IdMap(), IdMap()
    assert np.array_equal(a.extend(raw), b.extend(raw.tolist()))
    assert a.ids == b.ids and all(isinstance(i, int) for i in a.ids)
    more = rng.integers(30, 80, 300)  # known and new ids mixed: known keep their index
    assert np.array_equal(a.extend(more), b.extend(more.tolist()))
    assert a.ids == b.ids and a.lookup(a.ids).tolist() == list(range(len(a)))


def test_string_and_int_ids_do_not_collide() -> None:
    m = IdMap(["7"])
    assert m.extend([7]).tolist() == [1]


def test_json_round_trip() -> None:
    m = IdMap([3, "x"], name="item_id")
    assert IdMap.from_json(m.to_json()) == m
