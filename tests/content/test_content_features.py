"""Content vectors as ranker features (``FeatureConfig.vector_columns``) and as the
two-tower's item-tower input (``content_column``)."""

from __future__ import annotations

import numpy as np
import polars as pl

from funnelrec.content import with_vector_column
from funnelrec.data.dataset import Dataset
from funnelrec.features import FeatureBuilder, FeatureConfig
from funnelrec.recall.two_tower import TwoTowerRecall
from funnelrec.types import Candidates, Query


def dataset() -> Dataset:
    frame = pl.DataFrame(
        {"user_id": [1, 1, 2, 2], "item_id": [0, 1, 1, 2], "timestamp": [1, 2, 3, 4]}
    )
    ds = Dataset.from_frame(frame)
    vectors = np.arange(9, dtype=np.float32).reshape(3, 3) / 10
    return with_vector_column(ds, vectors, "content", valid=np.array([True, True, False]))


def test_vector_column_becomes_dense_item_fields() -> None:
    config = FeatureConfig(vector_columns=["content"], popularity=False, recall=False, seq_len=0)
    builder = FeatureBuilder(config).fit(dataset())
    assert [f.name for f in builder.schema.dense] == ["content:0", "content:1", "content:2"]
    q = Query.from_lists([0], [[0]], k=3)
    cands = Candidates.from_flat(
        np.array([0, 4]), np.array([1, 2, 0, 99]), np.zeros(4, dtype=np.float32), "x"
    )
    dense = builder.build(q, cands).dense.numpy()
    expected = [[0.3, 0.4, 0.5], [0, 0, 0], [0, 0.1, 0.2], [0, 0, 0]]  # no vector / unknown: 0
    np.testing.assert_allclose(dense, expected, atol=1e-6)


def test_two_tower_embeds_an_unseen_item_from_its_content_vector() -> None:
    ds = dataset()
    tower = TwoTowerRecall(
        content_column="content", dim=4, epochs=1, batch_size=2, early_stop=False, threads=1
    ).fit(ds)
    assert tower.sizes_["content_dim"] == 3
    a = tower.embed_items(ds.items[[0]])
    b = tower.embed_items(ds.items[[1]])
    assert not np.allclose(a, b)  # different content → different vectors without any id
