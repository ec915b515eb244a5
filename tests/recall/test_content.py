"""Content recall: known-answer similarity, brand-new items via upserts, cache, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.config import parse_config
from funnelrec.content import with_vector_column
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.errors import ConfigError, DataError
from funnelrec.eval.protocol import evaluate
from funnelrec.pipeline import Funnel
from funnelrec.recall.content import ContentRecall
from funnelrec.registry import RECALL
from funnelrec.types import Query

HASHING = {"encoder": "hashing", "encoder_params": {"dim": 128}}


def catalogue() -> Dataset:
    titles = [
        "red apple pie",
        "green apple tart",
        "diesel engine manual",
        "apple cider",
        "car engine",
    ]
    frame = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [0, 2, 4], "timestamp": [1, 2, 3]})
    items = pl.DataFrame({"item_id": list(range(5)), "title": titles})
    return Dataset.from_frame(frame, items=items)


def test_nearest_texts_come_first_and_items_without_interactions_are_served() -> None:
    channel = ContentRecall(**HASHING, text_columns=["title"]).fit(catalogue())
    q = Query.from_lists([0, 1, -1], [[0], [2], []], k=3, exclude=[[0], [2], []])
    c = channel.retrieve(q, 3)
    assert c.row(0)[0][1] == 1  # the other apple item next
    assert c.row(1)[0][0] == 4  # engine → engine
    assert len(c.row(2)[0]) == 0  # no history: empty row
    # "apple cider" first: 1 shared word of 3 and 2 → cosine 1/sqrt(6) (green apple tart: 1/3)
    assert c.row(0)[0][0] == 3 and c.row(0)[1][0] == pytest.approx(6**-0.5, abs=1e-5)


def test_recency_half_life_weights_the_newest_item() -> None:
    ds = catalogue()
    q = Query.from_lists([0], [[0, 2]], k=1, exclude=[[0, 2]])
    recent = ContentRecall(**HASHING, text_columns=["title"], half_life=0.5).fit(ds)
    assert recent.retrieve(q, 1).row(0)[0].tolist() == [4]  # the newest (engine) dominates


def test_precomputed_vector_column_and_bad_column() -> None:
    ds = catalogue()
    vecs = np.eye(5, dtype=np.float32)
    vecs[3] = [0.9, 0.1, 0, 0, 0]
    ds = with_vector_column(ds, vecs, "emb")
    channel = ContentRecall(vector_column="emb").fit(ds)
    c = channel.retrieve(Query.from_lists([0], [[0]], k=2, exclude=[[0]]), 2)
    assert c.row(0)[0][0] == 3
    assert c.row(0)[1][0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-5)
    with pytest.raises(DataError, match="'nope'"):
        ContentRecall(vector_column="nope").fit(ds)
    with pytest.raises(ConfigError, match="'plot'"):
        ContentRecall(**HASHING, text_columns=["plot"]).fit(ds)


def test_cache_dir_makes_refit_encode_nothing(tmp_path: Path, world: Dataset) -> None:
    params = {**HASHING, "cache_dir": str(tmp_path)}
    first = ContentRecall(**params).fit(world)
    assert first.extract_log_["encoded"] > 0
    second = ContentRecall(**params).fit(world)
    assert second.extract_log_["encoded"] == 0
    np.testing.assert_array_equal(first.vectors_, second.vectors_)


def test_beats_random_on_synthetic_world(world_split: Split) -> None:
    channel = RECALL.create("content", HASHING).fit(world_split.train)
    result = evaluate(lambda q: channel.retrieve(q, q.k), world_split, ks=(50,))
    random_recall = 50 / world_split.train.n_items
    assert result.metrics["recall@50"] > 1.3 * random_recall


def test_funnel_upsert_serves_a_brand_new_item(world_split: Split, tmp_path: Path) -> None:
    config = parse_config(
        {
            "recall": {
                "total": 50,
                "channels": [
                    {"name": "content", "params": {**HASHING, "cache_dir": str(tmp_path)}},
                    {"name": "itemcf"},
                ],
            },
            "rerank": [],
        }
    )
    train = world_split.train
    funnel = Funnel(config).fit(train)
    source = int(np.argmax(train.item_popularity))
    row = train.items.row(source, named=True)
    new = pl.DataFrame(
        {"item_id": ["brand-new"], "title": [row["title"] + " deluxe"], "tags": [row["tags"]]}
    )
    (new_idx,) = funnel.upsert_items(new)
    assert new_idx == train.n_items
    content = funnel.channels["content"]
    assert isinstance(content, ContentRecall) and content.extract_log_["encoded"] == 1
    q = Query.from_lists([-1], [[source]], k=10, exclude=[[source]])
    per_channel = funnel.retrieve_channels(q)
    assert new_idx in per_channel["content"].row(0)[0][:3]
    assert new_idx not in per_channel["itemcf"].row(0)[0]  # behaviour-only: never seen
    funnel.save(tmp_path / "artifact")
    loaded = Funnel.load(tmp_path / "artifact")
    again = loaded.retrieve_channels(q)["content"]
    np.testing.assert_array_equal(again.item_idx, per_channel["content"].item_idx)
