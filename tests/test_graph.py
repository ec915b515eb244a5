"""Graph recall: LightGCN (propagation, training, inductive cold start) and item2vec/EGES."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.ids import IdMap
from funnelrec.data.splits import Split
from funnelrec.eval.protocol import evaluate
from funnelrec.models.lightgcn import LightGCN, normalized_adjacency
from funnelrec.pipeline import Funnel
from funnelrec.recall.item2vec import Item2VecRecall, item_graph, random_walks, skipgram_pairs
from funnelrec.recall.lightgcn import LightGCNRecall
from funnelrec.recall.popular import PopularRecall
from funnelrec.types import Query

FAST = {"dim": 32, "epochs": 15, "early_stop": False, "batch_size": 512, "threads": 1}


def recall_at(channel: object, parts: Split, k: int = 50) -> float:
    result = evaluate(lambda q: channel.retrieve(q, q.k), parts, ks=(k,))  # type: ignore[attr-defined]
    return result.metrics[f"recall@{k}"]


@pytest.fixture(scope="module")
def lightgcn(world_split: Split) -> LightGCNRecall:
    return LightGCNRecall(**FAST).fit(world_split.train)


def test_normalized_adjacency_known_answer() -> None:
    # star: node 0 linked to 1 and 2 -> degrees 2, 1, 1 -> weights 1/sqrt(2)
    adj = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=np.float32))
    norm = normalized_adjacency(adj).toarray()
    expected = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]]) / np.sqrt(2)
    np.testing.assert_allclose(norm, expected, rtol=1e-6)


def test_propagation_and_its_gradient_match_dense_algebra() -> None:
    rng = np.random.default_rng(0)
    a = sp.random(30, 30, density=0.2, random_state=1)
    a = sp.csr_matrix(a + a.T)
    model = LightGCN(normalized_adjacency(a), 10, 20, 4, n_layers=2)
    dense = torch.tensor(normalized_adjacency(a).toarray(), dtype=torch.float32)
    weight = model.embedding.weight
    target = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    (model.propagate() * target).sum().backward()
    grad = weight.grad.clone()
    weight.grad = None
    x = weight
    total, layer = x, x
    for _ in range(2):
        layer = dense @ layer
        total = total + layer
    expected = total / 3
    (expected * target).sum().backward()
    torch.testing.assert_close(model.propagate().detach(), expected.detach())
    torch.testing.assert_close(grad, weight.grad)
    # user/item look-ups index the right rows
    users = model.user_vectors({"user": torch.tensor([0, 9])})
    items = model.item_vectors(torch.tensor([0, 19]))
    torch.testing.assert_close(users, expected[[0, 9]].detach())
    torch.testing.assert_close(items, expected[[10, 29]].detach())


def test_lightgcn_beats_popularity(lightgcn: LightGCNRecall, world_split: Split) -> None:
    pop = PopularRecall().fit(world_split.train)
    ours, base = recall_at(lightgcn, world_split), recall_at(pop, world_split)
    assert ours > base * 1.1, (ours, base)
    assert lightgcn.fit_log_["loss"][-1] < lightgcn.fit_log_["loss"][0]


def test_lightgcn_kg_variant_adds_entity_nodes(world_split: Split) -> None:
    plain = LightGCNRecall(**{**FAST, "epochs": 1}).fit(world_split.train)
    kg = LightGCNRecall(**{**FAST, "epochs": 1, "kg": True}).fit(world_split.train)
    ds = world_split.train
    assert plain.graph_.shape[0] == ds.n_users + ds.n_items
    assert kg.graph_.shape[0] > ds.n_users + ds.n_items
    assert kg.graph_.nnz > plain.graph_.nnz


def test_items_without_interactions_get_attribute_vectors(world: Dataset) -> None:
    """Hold out every interaction of some items: they are still indexed, near their tags."""
    cats, _ = world.item_categories
    held = np.arange(0, world.n_items, 10)
    train = world.with_interactions(
        world.interactions.filter(~pl.col("item_idx").is_in(held.tolist()))
    )
    model = LightGCNRecall(**FAST).fit(train)
    assert set(held.tolist()) <= set(model.cold_items_.tolist())
    vecs = model.model_.item_vectors(torch.arange(world.n_items)).detach().numpy()
    warm = np.setdiff1d(np.arange(world.n_items), held)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    sims = unit[held] @ unit[warm].T
    same = cats[held][:, None] == cats[warm][None, :]
    assert sims[same].mean() > sims[~same].mean() + 0.1
    # a fan of the category finds held-out items of that category
    fans_hist = [warm[cats[warm] == cats[held[0]]][:8].tolist()]
    found = model.retrieve(Query.from_lists([-1], fans_hist, k=10), 10)
    assert found.lengths()[0] == 0  # unknown users have no LightGCN vector
    user = int(np.argmax(np.bincount(train.arrays.user_idx, minlength=train.n_users)))
    found = model.retrieve(train.query(np.array([user]), 10), train.n_items)
    assert np.isin(held, found.item_idx).all()


def test_funnel_upsert_gives_new_item_an_embedding_without_retraining(world: Dataset) -> None:
    raw = {"recall": {"channels": [{"name": "lightgcn", "params": FAST}]}}
    funnel = Funnel(parse_config(raw)).fit(world)
    channel = funnel.channels["lightgcn"]
    assert isinstance(channel, LightGCNRecall)
    weights = [p.detach().clone() for p in channel.model_.parameters()]
    category, tags = world.items["category"][0], world.items["tags"][0]
    new = funnel.upsert_items(
        pl.DataFrame({"item_id": ["brand-new"], "category": [category], "tags": [tags]})
    )
    assert int(new[0]) == world.n_items
    vec = channel.embed_new_items(funnel.dataset, new)[0]
    assert np.linalg.norm(vec) > 0
    same = (world.items["category"] == category).to_numpy()
    item_vecs = channel.model_.item_vectors(torch.arange(world.n_items)).detach().numpy()
    sims = item_vecs @ vec / np.linalg.norm(item_vecs, axis=1) / np.linalg.norm(vec)
    assert sims[same].mean() > sims[~same].mean() + 0.1
    fans = np.argsort(-np.bincount(world.arrays.user_idx[same[world.arrays.item_idx]]))[:20]
    found = channel.retrieve(world.query(fans, 100), 100)
    assert int(new[0]) in found.item_idx.tolist()
    for before, after in zip(weights, channel.model_.parameters(), strict=True):
        assert torch.equal(before, after)  # no retraining


# -- item2vec / EGES ---------------------------------------------------------------------------
def tiny_sequences() -> Dataset:
    frame = pl.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c", "c"],
            "item_id": ["x", "y", "z", "x", "y", "y", "x"],
            "timestamp": [0, 10, 5000, 0, 20, 0, 30],
        }
    )
    return Dataset.from_frame(frame)


def test_item_graph_counts_users_within_gap_and_window() -> None:
    ds = tiny_sequences()
    x, y, z = (ds.item_ids.index(i) for i in "xyz")
    g = item_graph(ds, max_gap=2, window_s=100).toarray()
    assert g[x, y] == 2  # users a and b, both within 100 s
    assert g[y, x] == 1  # user c
    assert g[y, z] == 0 and g[x, z] == 0  # z came 5000 s later
    g_all = item_graph(ds, max_gap=1, window_s=None).toarray()
    assert g_all[y, z] == 1 and g_all[x, z] == 0  # x -> z is two steps away


def test_random_walks_follow_edges_and_stop_at_dead_ends() -> None:
    g = sp.csr_matrix(np.array([[0, 3, 1], [0, 0, 1], [0, 0, 0]], dtype=np.float32))
    walks = random_walks(g, per_node=200, length=4, rng=np.random.default_rng(0))
    assert set(walks[:, 0].tolist()) == {0, 1}  # node 2 has no out-edges
    dense = g.toarray()
    for a, b in zip(walks[:, :-1].ravel(), walks[:, 1:].ravel(), strict=True):
        assert b == -1 or dense[a, b] > 0
    from_zero = walks[walks[:, 0] == 0, 1]
    assert 0.65 < np.mean(from_zero == 1) < 0.85  # weights 3:1
    centre, ctx = skipgram_pairs(np.array([[0, 1, 2, -1]]), context=1)
    assert sorted(zip(centre.tolist(), ctx.tolist(), strict=True)) == [
        (0, 1), (1, 0), (1, 2), (2, 1),
    ]  # fmt: skip


def test_item2vec_learns_and_embeds_new_items(world_split: Split) -> None:
    params = {"dim": 32, "walks_per_item": 5, "walk_length": 10, "threads": 1, "max_history": 5}
    model = Item2VecRecall(**params).fit(world_split.train)
    ds = world_split.train
    ours = recall_at(model, world_split)
    assert ours > 2 * 50 / ds.n_items, ours  # well above a random ranking
    assert model.fit_log_["loss"][-1] < model.fit_log_["loss"][0]
    ids = IdMap(ds.item_ids.ids, name=ds.item_ids.name)
    ids.extend(["brand-new"])
    new_row = ds.items.head(1).with_columns(pl.lit(ds.n_items, dtype=pl.Int64).alias("item_idx"))
    grown = ds.replace(item_ids=ids, items=pl.concat([ds.items, new_row]))
    model.upsert_items(grown, np.array([ds.n_items]))
    cats, _ = ds.item_categories
    same = np.flatnonzero(cats == cats[0])[:10]
    found = model.retrieve(Query.from_lists([-1], [same.tolist()], k=10), 200)
    assert ds.n_items in found.item_idx.tolist()
