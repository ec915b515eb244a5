"""Tag recall: profile from recency-weighted history, Sainte-Laguë mixing, fallbacks."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.recall import tag as tag_module
from funnelrec.recall.tag import TagRecall
from funnelrec.types import Query

N_PER_TAG = 20


@pytest.fixture(scope="module")
def music() -> Dataset:
    """20 jazz items ``j0..j19`` and 20 rock items ``r0..r19`` (plus ``both``, tagged with
    both); popularity falls with the number (``x0`` most clicked)."""
    ids = [f"{t}{i}" for t in "jr" for i in range(N_PER_TAG)] + ["both"]
    tags = [["jazz"]] * N_PER_TAG + [["rock"]] * N_PER_TAG + [["jazz", "rock"]]
    items = pl.DataFrame({"item_id": ids, "tags": tags})
    clicks = [name for name in ids[:-1] for _ in range(N_PER_TAG - int(name[1:]))]
    frame = pl.DataFrame({"user_id": np.arange(len(clicks)), "item_id": clicks, "timestamp": 0.0})
    return Dataset.from_frame(frame, items=items)


def idx(ds: Dataset, names: list[str]) -> list[int]:
    return [ds.item_ids.index(n) for n in names]


def names(ds: Dataset, items: list[int]) -> list[str]:
    return [str(x) for x in ds.item_ids.external(items)]


def query(ds: Dataset, histories: list[list[str]], k: int) -> Query:
    hist = [idx(ds, h) for h in histories]
    return Query.from_lists([-1] * len(hist), hist, k=k, exclude=hist)


def kinds(ds: Dataset, items: list[int]) -> str:
    return "".join(name[0] for name in names(ds, items))


def test_mix_follows_profile_weight(music: Dataset) -> None:
    model = TagRecall(half_life_events=None).fit(music)
    history = [f"j{i}" for i in range(12, 19)] + ["r17", "r18", "r19"]  # 70% jazz
    c = model.retrieve(query(music, [history], 10), 10)
    got = kinds(music, c.to_lists()[0])
    assert sorted(got) == sorted("j" * 7 + "r" * 3)
    assert got[:4] == "jrjj"  # Sainte-Laguë order: .7, .3, .7/3, .7/5, then .7/7 = .3/3
    assert names(music, c.to_lists()[0][:3]) == ["j0", "r0", "j1"]
    np.testing.assert_allclose(c.scores[:3], [0.7, 0.3, 0.7 / 3], rtol=1e-6)


def test_longer_lists_keep_the_proportion(music: Dataset) -> None:
    model = TagRecall(half_life_events=None).fit(music)
    history = ["j19", "j18", "j17", "r19"]  # 75% jazz
    got = kinds(music, model.retrieve(query(music, [history], 20), 20).to_lists()[0])
    assert got.count("j") == 15 and got.count("r") == 5


def test_recent_items_weigh_more(music: Dataset) -> None:
    history = ["r19", "r18", "r17", "j19"]  # rock long ago, jazz just now
    flat = TagRecall(half_life_events=None).fit(music)
    decayed = TagRecall(half_life_events=0.5).fit(music)  # weights 1/64, 1/16, 1/4, 1
    assert kinds(music, flat.retrieve(query(music, [history], 1), 1).to_lists()[0]) == "r"
    assert kinds(music, decayed.retrieve(query(music, [history], 1), 1).to_lists()[0]) == "j"
    shares = decayed.profile(query(music, [history], 1)).toarray()[0]
    np.testing.assert_allclose(shares, [1.0, 1 / 64 + 1 / 16 + 1 / 4])


def test_time_decay_uses_the_query_clock(music: Dataset) -> None:
    q = query(music, [["r19", "j19"]], 1)
    day = 86_400.0
    ts = np.array([9 * day, 0.0])  # the rock item is recent, the jazz item 9 days old
    q = dataclasses.replace(q, history_ts=ts, now=np.array([10 * day]))
    model = TagRecall(half_life_events=None, half_life_days=1.0).fit(music)
    np.testing.assert_allclose(model.profile(q).toarray()[0], [2**-10, 2**-1])


def test_max_tags_and_per_tag_limit_the_lists(music: Dataset) -> None:
    model = TagRecall(half_life_events=None, max_tags=1, per_tag=5).fit(music)
    history = ["j19", "j18", "r19"]
    got = kinds(music, model.retrieve(query(music, [history], 10), 10).to_lists()[0])
    assert got == "jjjjj"  # only the strongest tag, only its 5 best items


def test_empty_history_is_empty_or_popular(music: Dataset) -> None:
    q = Query.from_lists([-1, -1], [[], []], k=3, exclude=[[], idx(music, ["j0"])])
    assert TagRecall().fit(music).retrieve(q, 3).lengths().tolist() == [0, 0]
    fallback = TagRecall(fallback_popular=True).fit(music)
    rows = fallback.retrieve(q, 3).to_lists()
    assert names(music, rows[1]) == ["r0", "j1", "r1"]


def test_unknown_history_items_are_ignored(music: Dataset) -> None:
    q = Query.from_lists([-1], [[idx(music, ["j3"])[0], 10_000]], k=3)
    assert kinds(music, TagRecall().fit(music).retrieve(q, 3).to_lists()[0]) == "jjj"


def test_world_items_carry_the_users_top_tags(world_split: Split) -> None:
    train = world_split.train
    model = TagRecall(max_tags=3).fit(train)
    q = world_split.test_query(world_split.test_users()[:100], 50)
    c = model.retrieve(q, 50)
    assert np.all(c.lengths() > 0)  # rows hold what the profile's tags offer (up to 50)
    profile = model.profile(q).toarray()
    third = -np.sort(-profile, axis=1)[:, 2:3]
    top_tags = (profile >= third) & (profile > 0)  # [B, n_tags]
    tags = train.item_tags[0].toarray() > 0  # [n_items, n_tags]
    shared = (tags[c.item_idx] & top_tags[c.row_ids()]).any(axis=1)
    assert shared.all()


def test_depth_bound_keeps_the_exact_top_k(
    world_split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TagRecall(max_tags=8, per_tag=300, fallback_popular=True).fit(world_split.train)
    users = np.concatenate([world_split.test_users()[:200], [-1]])
    q = world_split.test_query(users, 40)
    bounded = model.retrieve(q, 40)
    monkeypatch.setattr(tag_module, "_needed_depth", lambda rows, shares, lengths, depth: depth)
    full = model.retrieve(q, 40)
    assert bounded.to_lists() == full.to_lists()
    np.testing.assert_array_equal(bounded.scores, full.scores)


@pytest.mark.parametrize("dense", [True, False])
def test_finish_keeps_each_items_best_score_and_drops_exclusions(
    dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_grouped.finish`` (tag, fresh, high_ctr): repeated ``(row, item)`` keep their best
    score, excluded items go, rows come best first and cut to ``k`` (both lookup paths)."""
    from funnelrec import ragged
    from funnelrec.recall._grouped import finish

    if not dense:
        monkeypatch.setattr(ragged, "DENSE_MAX", 0)
    rows = np.array([1, 0, 0, 1, 0, 1, 0], dtype=np.int64)
    items = np.array([5, 3, 4, 5, 3, 7, 9], dtype=np.int64)
    scores = np.array([0.2, 0.1, 0.5, 0.9, 0.8, 0.3, 0.4])
    q = Query.from_lists([0, 1], [[], []], k=2, exclude=[[4], []])
    c = finish(rows, items, scores, q, 2, "tag")
    assert c.to_lists() == [[3, 9], [5, 7]]
    np.testing.assert_allclose(c.scores, [0.8, 0.4, 0.9, 0.3])
