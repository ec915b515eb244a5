"""Two-tower recall: beats popular, new events count, cold items embed near their category,
head-item downsampling lowers the head share at a small accuracy cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from funnelrec.data.splits import Split
from funnelrec.eval.head_bias import head_bias
from funnelrec.eval.protocol import evaluate
from funnelrec.recall.popular import PopularRecall
from funnelrec.recall.two_tower import TwoTowerRecall
from funnelrec.types import Query

FAST: dict[str, Any] = {
    "lr": 0.005, "recent": 3, "use_user_id": False, "early_stop": False, "epochs": 5,
    "threads": 1,
}  # fmt: skip
NDCG_TOLERANCE = 0.02  # downsampling may cost at most this much NDCG@10 on the world


def ndcg(channel: Any, split: Split) -> float:
    return evaluate(lambda q: channel.retrieve(q, q.k), split, ks=(10,)).metrics["ndcg@10"]


@pytest.fixture(scope="module")
def tower(world_split: Split) -> TwoTowerRecall:
    return TwoTowerRecall(**FAST).fit(world_split.train)


def test_two_tower_beats_popular(world_split: Split, tower: TwoTowerRecall) -> None:
    popular = ndcg(PopularRecall().fit(world_split.train), world_split)
    assert ndcg(tower, world_split) > popular + 0.01


def test_new_events_count(tower: TwoTowerRecall, world_split: Split) -> None:
    user = int(world_split.test_users()[0])
    q = world_split.test_query(np.array([user]), 10)
    before = tower.retrieve(q, 10).to_lists()[0]
    other = Query.from_lists([user], [list(range(200, 210))], k=10)
    after = tower.retrieve(other, 10).to_lists()[0]
    assert before != after
    unknown = Query.from_lists([-1, -1], [[5, 6, 7], []], k=10)
    np.testing.assert_array_equal(tower.retrieve(unknown, 10).lengths(), [10, 0])


def test_new_item_embeds_near_its_category(world_split: Split) -> None:
    ds = world_split.train
    tower = TwoTowerRecall(**{**FAST, "id_dropout": 0.5}).fit(ds)
    cats, names = ds.item_categories
    template = ds.items.filter(pl.col("category") == names[0]).head(1)
    vec = tower.embed_items(template.drop("item_idx"))
    items = tower.embed_items(ds.items)
    sims = items @ vec[0]
    same, other = sims[cats == 0].mean(), sims[cats != 0].mean()
    assert same > other + 0.2
    nearest = np.argsort(-sims)[:10]
    assert np.mean(cats[nearest] == 0) >= 0.8
    # and it can be served: add it under a new id, a fan of the category finds it
    new_id = ds.n_items
    tower.add_items(np.array([new_id]), template)
    fans = np.argsort(-np.bincount(ds.arrays.user_idx[cats[ds.arrays.item_idx] == 0]))[:20]
    found = tower.retrieve(world_split.test_query(fans, 50), 50).item_idx
    assert new_id in found


def test_head_downsampling_lowers_head_share(world_split: Split, tower: TwoTowerRecall) -> None:
    sub = TwoTowerRecall(**FAST, subsample=3e-3).fit(world_split.train)
    base_bias = head_bias(lambda q: tower.retrieve(q, q.k), world_split, k=10)
    sub_bias = head_bias(lambda q: sub.retrieve(q, q.k), world_split, k=10)
    assert sub_bias["head1_share@10"] < base_bias["head1_share@10"]
    assert sub_bias["head10_share@10"] < base_bias["head10_share@10"] - 0.05
    assert sub_bias["tail_recall@10"] > base_bias["tail_recall@10"]
    assert ndcg(sub, world_split) > ndcg(tower, world_split) - NDCG_TOLERANCE


def test_funnel_upsert_makes_new_item_retrievable() -> None:
    import polars as pl

    from funnelrec.config import parse_config
    from funnelrec.data.synthetic import generate
    from funnelrec.pipeline import Funnel
    from funnelrec.types import Query

    world = generate(n_users=300, n_items=200, n_interactions=6000, seed=1)
    raw = {"recall": {"channels": [{"name": "two_tower", "params": {"epochs": 2}}]}}
    funnel = Funnel(parse_config(raw)).fit(world)
    category, tags = world.items["category"][0], world.items["tags"][0]
    new = funnel.upsert_items(
        pl.DataFrame({"item_id": ["brand-new"], "category": [category], "tags": [tags]})
    )
    same_category = (world.items["category"] == category).to_numpy().nonzero()[0][:5]
    query = Query.from_lists([-1], [same_category.tolist()], k=10)
    found = funnel.channels["two_tower"].retrieve(query, 200)
    assert int(new[0]) in found.item_idx.tolist()


def test_sparse_gradients_learn_as_well(world_split: Split, tower: TwoTowerRecall) -> None:
    """Lazy (sparse) Adam, the large-catalogue path, learns about as well as dense Adam."""
    sparse = TwoTowerRecall(**FAST, sparse_grad=True).fit(world_split.train)
    assert ndcg(sparse, world_split) > ndcg(tower, world_split) - NDCG_TOLERANCE


def test_bfloat16_products_reach_the_softmax_and_learn_as_well(
    world_split: Split, tower: TwoTowerRecall, softmax_precisions: list[str]
) -> None:
    """``precision="bfloat16"`` is what every softmax call of the fit gets, and the channel
    learns about as well as in float32."""
    bf16 = TwoTowerRecall(**FAST, precision="bfloat16").fit(world_split.train)
    assert softmax_precisions and set(softmax_precisions) == {"bfloat16"}
    assert ndcg(bf16, world_split) > ndcg(tower, world_split) - NDCG_TOLERANCE
