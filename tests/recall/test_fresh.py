"""Fresh recall: age window, recency scores, brand-new items, per-category mode, live clock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.data.splits import Split
from funnelrec.recall.fresh import FreshRecall
from funnelrec.registry import RECALL
from funnelrec.types import Query

DAY = 86_400.0
NOW = 100 * DAY


@pytest.fixture(scope="module")
def shop() -> Dataset:
    """Jazz items j0 (day 95), j1 (day 90), j2 (day 40); rock r0 (day 99), r1 (day 80);
    ``new`` (rock, created at NOW, never clicked); ``future`` (created after NOW);
    ``nodate`` (no created_at: its first click, day 50, counts)."""
    items = pl.DataFrame(
        {
            "item_id": ["j0", "j1", "j2", "r0", "r1", "new", "future", "nodate"],
            "category": ["jazz", "jazz", "jazz", "rock", "rock", "rock", "rock", None],
            "created_at": [95.0, 90.0, 40.0, 99.0, 80.0, 100.0, 101.0, None],
        }
    ).with_columns(pl.col("created_at") * DAY)
    frame = pl.DataFrame(
        {
            "user_id": ["u", "u", "v", "v", "w"],
            "item_id": ["j2", "j1", "r1", "nodate", "r0"],
            "timestamp": [41 * DAY, 91 * DAY, 81 * DAY, 50 * DAY, NOW],
        }
    )
    return Dataset.from_frame(frame, items=items)


def names(ds: Dataset, items: list[int]) -> list[str]:
    return [str(x) for x in ds.item_ids.external(items)]


def cold(k: int = 10, now: float = 0.0) -> Query:
    return Query.from_lists([-1], [[]], k=k, now=now)


def test_newest_first_within_max_age(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=15.0, half_life_days=10.0).fit(shop)
    c = model.retrieve(cold(), 10)
    # created within 15 days of the latest event (NOW); `future` is not available yet
    assert names(shop, c.to_lists()[0]) == ["new", "r0", "j0", "j1"]
    np.testing.assert_allclose(c.scores, 0.5 ** (np.array([0, 1, 5, 10]) / 10.0), rtol=1e-6)


def test_every_item_respects_max_age(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=55.0).fit(shop)
    got = names(shop, model.retrieve(cold(), 10).to_lists()[0])
    assert got == ["new", "r0", "j0", "j1", "r1", "nodate"]  # j2 (60 days old) is too old
    everything = FreshRecall(max_age_days=None).fit(shop)
    assert names(shop, everything.retrieve(cold(), 10).to_lists()[0])[-1] == "j2"


def test_brand_new_item_without_interactions_is_served(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=1.0).fit(shop)
    assert names(shop, model.retrieve(cold(), 5).to_lists()[0]) == ["new", "r0"]


def test_per_category_puts_recent_categories_first(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=30.0, per_category=True).fit(shop)
    q = shop.query(np.array([0, 1, -1]), 10)  # u: jazz; v: rock; cold user
    rows = [names(shop, r) for r in model.retrieve(q, 10).to_lists()]
    assert rows[0] == ["j0", "new", "r0", "r1"]  # jazz first (j1 is in u's history)
    assert rows[1] == ["new", "r0", "j0", "j1"]  # rock first (r1 is in v's history)
    assert rows[2] == ["new", "r0", "j0", "j1", "r1"]  # cold: global newest
    scores = model.retrieve(q, 10).row(0)[1]
    assert scores[0] > 1.0 >= scores[1]  # boosted category item, then global recency


def test_query_clock_uses_each_queries_now(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=10.0, half_life_days=5.0, clock="query").fit(shop)
    q = Query.from_lists([-1, -1, -1], [[], [], []], k=10)
    q = dataclasses.replace(q, now=np.array([92 * DAY, 101 * DAY, 0.0]))
    rows = [names(shop, r) for r in model.retrieve(q, 10).to_lists()]
    assert rows[0] == ["j1"]  # j0 / r0 / new do not exist yet at day 92, r1 is too old
    assert rows[1] == ["future", "new", "r0", "j0"]
    assert rows[2] == []  # before every creation time


def test_exclusions_do_not_shorten_rows(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=None).fit(shop)
    q = Query.from_lists([-1], [[]], k=3, exclude=[[5, 3]])  # new, r0
    assert len(model.retrieve(q, 3).to_lists()[0]) == 3


def test_save_load_with_query_clock(shop: Dataset, tmp_path: Path) -> None:
    model = FreshRecall(clock="query", per_category=True).fit(shop)
    model.save(tmp_path / "fresh")
    loaded = RECALL.load(tmp_path / "fresh")
    q = shop.query(np.array([0, 1]), 5)
    assert loaded.retrieve(q, 5).to_lists() == model.retrieve(q, 5).to_lists()


def test_world_items_are_fresh(world_split: Split) -> None:
    train = world_split.train
    model = FreshRecall(max_age_days=30.0).fit(train)
    q = world_split.test_query(world_split.test_users()[:20], 50)
    c = model.retrieve(q, 50)
    age = train.max_timestamp - train.item_created_at[c.item_idx]
    assert len(c) > 0 and np.all((age >= 0) & (age <= 30 * DAY))


def test_upserted_items_are_served_at_once(shop: Dataset) -> None:
    model = FreshRecall(max_age_days=4.0, per_category=True).fit(shop)
    ids = IdMap(shop.item_ids.ids, name="item_id")
    hot = int(ids.extend(["hot"])[0])
    extra = pl.DataFrame({"item_idx": [hot], "category": ["jazz"], "created_at": [103 * DAY]})
    grown = shop.replace(item_ids=ids, items=pl.concat([shop.items, extra], how="vertical_relaxed"))
    model.upsert_items(grown, np.array([hot]))
    # the clock moved to day 103: `hot`, `future` (101), `new` (100), `r0` (99) are fresh
    assert names(grown, model.retrieve(cold(), 5).to_lists()[0]) == ["hot", "future", "new", "r0"]


def test_max_categories_keeps_the_most_frequent(shop: Dataset) -> None:
    jazz, rock = shop.item_ids.lookup(["j2", "r1"]).tolist()
    model = FreshRecall(max_age_days=30.0, per_category=True, max_categories=1).fit(shop)
    q = Query.from_lists([-1, -1], [[rock, jazz, jazz], [rock, jazz]], k=2)
    rows = [names(shop, r) for r in model.retrieve(q, 2).to_lists()]
    assert rows == [["j0", "j1"], ["j0", "j1"]]  # most frequent; tie -> most recent (jazz)
    wide = FreshRecall(max_age_days=30.0, per_category=True, max_categories=2).fit(shop)
    assert names(shop, wide.retrieve(q, 2).to_lists()[0]) == ["new", "r0"]
