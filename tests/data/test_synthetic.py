"""The synthetic world: schemas, determinism, and the structure recommenders rely on."""

from __future__ import annotations

import json
import time

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from funnelrec.data.dataset import Dataset
from funnelrec.data.synthetic import WorldSpec, generate
from funnelrec.errors import ConfigError


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return generate()  # the default world: 2000 users, 1000 items, 100k clicks


def _small(seed: int = 3) -> Dataset:
    return generate(n_users=300, n_items=200, n_interactions=6_000, seed=seed)


def test_sizes_and_schemas(ds: Dataset) -> None:
    assert (ds.n_users, ds.n_items, len(ds)) == (2000, 1000, 100_000)
    assert ds.name == "synthetic-100k"
    assert ds.feedback == ("click", "like", "purchase")
    assert dict(ds.interactions.schema) == {
        "user_idx": pl.Int64, "item_idx": pl.Int64, "timestamp": pl.Float64,
        "click": pl.Float32, "like": pl.Float32, "purchase": pl.Float32,
    }  # fmt: skip
    items = ds.items.schema
    assert items["item_idx"] == pl.Int64 and items["created_at"] == pl.Float64
    assert items["category"] == items["title"] == items["price_bucket"] == pl.Utf8
    assert items["tags"] == pl.List(pl.Utf8)
    assert ds.items["item_idx"].to_list() == list(range(ds.n_items))
    assert ds.users is not None and ds.users.columns == ["user_idx", "age_bucket", "region"]
    assert ds.impressions is not None and dict(ds.impressions.schema) == {
        "user_idx": pl.Int64, "item_idx": pl.Int64, "timestamp": pl.Float64, "clicked": pl.Int8,
    }  # fmt: skip
    assert ds.kg is not None and dict(ds.kg.schema) == dict.fromkeys(
        ("head", "relation", "tail"), pl.Utf8
    )
    assert ds.item_entities is not None
    assert dict(ds.item_entities.schema) == {"item_idx": pl.Int64, "entity": pl.Utf8}


def test_item_table_content(ds: Dataset) -> None:
    assert 12 <= ds.items["category"].n_unique() <= 16
    n_tags = ds.items["tags"].list.len()
    assert n_tags.min() >= 2 and n_tags.max() <= 4
    assert ds.items["tags"].explode().n_unique() > 60
    assert ds.items["title"].str.contains(": Part 2").sum() > 5  # series
    dups = ds.meta["near_duplicates"]
    titles = ds.items["title"].to_list()
    assert len(dups) > 0
    assert all(titles[copy].startswith(titles[orig]) for copy, orig in dups)
    # an item's tags are mostly specific to its category
    exploded = ds.items.select("category", "tags").explode("tags")
    owners = exploded.group_by("tags").agg(pl.col("category").n_unique().alias("n"))
    assert (owners["n"] == 1).mean() > 0.8


def test_meta_is_json_ready(ds: Dataset) -> None:
    assert json.loads(json.dumps(ds.meta))["seed"] == 0
    assert len(ds.meta["true_ctr"]) == ds.n_items


def test_deterministic_per_seed() -> None:
    a, b, c = _small(1), _small(1), _small(2)
    for name in ("interactions", "items", "users", "impressions", "kg", "item_entities"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.interactions.equals(c.interactions)


def test_popularity_is_heavy_tailed(ds: Dataset) -> None:
    counts = np.sort(ds.item_popularity)[::-1]
    assert counts[: ds.n_items // 10].sum() / counts.sum() > 0.4


def test_activity(ds: Dataset) -> None:
    per_user = np.bincount(ds.arrays.user_idx, minlength=ds.n_users)
    assert per_user.min() >= 5
    assert np.median(per_user) < per_user.mean() < per_user.max() / 2  # skewed, with heavy users
    pairs = ds.arrays.user_idx * ds.n_items + ds.arrays.item_idx
    assert len(np.unique(pairs)) > 0.99 * len(pairs)  # (almost) no re-consumption


def test_time_span_and_new_items(ds: Dataset) -> None:
    ts, created = ds.arrays.timestamp, ds.items["created_at"].to_numpy()
    assert (ts >= created[ds.arrays.item_idx]).all()
    assert 170 < (ts.max() - ts.min()) / 86_400 <= 180
    new = created > ts.min()
    assert 0.1 < new.mean() < 0.4
    assert np.isin(np.flatnonzero(new), ds.arrays.item_idx).mean() > 0.5  # new items get clicks


def test_feedback_nested(ds: Dataset) -> None:
    fb = ds.arrays.feedback
    assert (fb["click"] == 1).all()
    assert (fb["purchase"] <= fb["like"]).all()
    assert 0.1 < fb["like"].mean() < 0.7 and 0.02 < fb["purchase"].mean() < fb["like"].mean()


def test_impressions_hold_clicks_and_negatives(ds: Dataset) -> None:
    assert ds.impressions is not None
    imp = ds.impressions
    keys = ["user_idx", "item_idx", "timestamp"]
    clicked = imp.filter(pl.col("clicked") == 1).select(keys).sort(keys)
    assert clicked.equals(ds.interactions.select(keys).sort(keys))
    assert imp.height > 2 * len(ds) and imp.select(keys).is_unique().all()
    stats = imp.group_by("item_idx").agg(pl.col("clicked").sum().alias("c"), pl.len().alias("n"))
    stats = stats.filter(pl.col("n") >= 30)
    smoothed = (stats["c"] + 1.0) / (stats["n"] + 4.0)
    truth = np.asarray(ds.meta["true_ctr"])[stats["item_idx"].to_numpy()]
    assert np.corrcoef(smoothed.to_numpy(), truth)[0, 1] > 0.8  # CTR is recoverable


def test_knowledge_graph(ds: Dataset) -> None:
    assert ds.kg is not None and ds.item_entities is not None
    relations = set(ds.kg["relation"].unique())
    assert {"has_creator", "in_series", "has_tag", "in_category", "edition_of"} <= relations
    heads = set(ds.kg.filter(pl.col("relation") == "has_creator")["head"])
    assert heads == set(ds.item_entities["entity"])


def test_interests_follow_user_attributes(ds: Dataset) -> None:
    assert ds.users is not None
    codes, _ = ds.item_categories
    age = ds.users["age_bucket"].to_numpy()[ds.arrays.user_idx]
    frame = pl.DataFrame({"age": age, "cat": codes[ds.arrays.item_idx]})
    table = frame.group_by("age", "cat").len().pivot(on="cat", index="age", values="len")
    mix = table.drop("age").fill_null(0).to_numpy().astype(float)
    mix /= mix.sum(1, keepdims=True)
    assert 0.5 * np.abs(mix[:, None] - mix[None]).sum(-1).max() > 0.1  # distributions differ


def test_sequential_structure(ds: Dataset) -> None:
    offsets, items, _ = ds.sequences
    codes, _ = ds.item_categories
    cats, users = codes[items], np.repeat(np.arange(ds.n_users), np.diff(offsets))
    same_user = users[1:] == users[:-1]
    observed = (cats[1:] == cats[:-1])[same_user].mean()
    # expected if each user's items were in random order: sum over users of sum_c p_uc^2
    share = sp.csr_matrix((np.ones(len(items)), (users, cats))).toarray()
    n = share.sum(1)
    share /= n[:, None]
    expected = ((share**2).sum(1) * (n - 1)).sum() / (n - 1).sum()
    assert observed > expected + 0.1


def test_item_cooccurrence_beats_popularity(ds: Dataset) -> None:
    """The reason the world exists: leave-last-out hit-rate@10, item-CF vs most-popular."""
    offsets, items, _ = ds.sequences
    users = np.repeat(np.arange(ds.n_users), np.diff(offsets))
    last = offsets[1:] - 1
    train = np.ones(len(items), dtype=bool)
    train[last] = False
    x = sp.csr_matrix(
        (np.ones(train.sum()), (users[train], items[train])), shape=(ds.n_users, ds.n_items)
    )
    x.data[:] = 1.0
    norm = x.multiply(1.0 / (np.sqrt(np.asarray(x.sum(0)).ravel()) + 1e-9)).tocsr()
    sim = (norm.T @ norm).toarray()
    np.fill_diagonal(sim, 0.0)

    def hit_rate(scores: np.ndarray) -> float:
        scores = scores.copy()
        scores[x.nonzero()] = -np.inf
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        return float((top == items[last][:, None]).any(1).mean())

    popular = np.tile(np.asarray(x.sum(0), dtype=float), (ds.n_users, 1))
    hr_pop, hr_cf = hit_rate(popular), hit_rate(sim[items[last - 1]])
    assert hr_cf > 1.3 * hr_pop, (hr_cf, hr_pop)


@pytest.mark.perf
def test_perf_generation_is_fast() -> None:
    start = time.perf_counter()
    generate(n_interactions=100_000, seed=11)
    assert time.perf_counter() - start < 5.0


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_interactions"):
        generate(n_users=100, n_items=100, n_interactions=100)
    with pytest.raises(ConfigError, match="probabilities"):
        WorldSpec(p_stay=0.9)
