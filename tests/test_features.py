"""Feature pipeline: encoders and FeatureBuilder known answers, train/serve identity."""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.encoders import OOV, PAD, Buckets, Scaler, Vocab, from_json, hash_ints, to_json
from funnelrec.features import FeatureBuilder, FeatureConfig
from funnelrec.types import Candidates, Query

DAY = 86_400.0


def test_vocab_oov_min_count_and_missing() -> None:
    vocab = Vocab.fit(["a", "b", "a", None, "c", "c"], min_count=2)
    assert vocab.values == ("a", "c") and vocab.size == 4
    np.testing.assert_array_equal(vocab.encode(["a", "c", "b", "zzz", None]), [2, 3, OOV, OOV, PAD])
    assert from_json(to_json(vocab)) == vocab


def test_hashing_is_stable_and_in_range() -> None:
    vocab = Vocab.fit(["x"], hash_buckets=10)
    assert vocab.size == 12
    assert vocab.encode(["hello"])[0] == zlib.crc32(b"hello") % 10 + 2
    codes = hash_ints(np.arange(10_000), 97)
    assert codes.min() >= 2 and codes.max() <= 98
    np.testing.assert_array_equal(codes, hash_ints(np.arange(10_000), 97))
    assert len(np.unique(codes)) == 97  # spreads over every bucket


def test_buckets_and_scaler() -> None:
    buckets = Buckets.fit(np.arange(100.0), 4)
    np.testing.assert_array_equal(buckets.encode([0.0, 30.0, 60.0, 99.0, np.nan]), [2, 3, 4, 5, 0])
    scaler = Scaler.fit([0.0, np.e - 1.0], log=True)
    np.testing.assert_allclose(scaler.encode([0.0, np.e - 1.0, np.nan]), [-1.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    """3 users, 4 items; user 0 watched items 0, 1, 2 (in that order), user 1 item 3."""
    frame = pl.DataFrame(
        {
            "user_id": ["u0", "u0", "u0", "u1", "u2"],
            "item_id": ["i0", "i1", "i2", "i3", "i0"],
            "timestamp": [10 * DAY, 11 * DAY, 12 * DAY, 12 * DAY, 1 * DAY],
        }
    )
    users = pl.DataFrame({"user_id": ["u0", "u1", "u2"], "gender": ["F", "M", None]})
    items = pl.DataFrame(
        {
            "item_id": ["i0", "i1", "i2", "i3"],
            "tags": [["a", "b", "c"], ["b"], [], ["a"]],
        }
    )
    return Dataset.from_frame(frame, items=items, users=users)


def test_builder_codes_oov_padding_and_sequence(tiny: Dataset) -> None:
    config = FeatureConfig(max_tags=2, seq_len=2, recall=False, popularity=False)
    builder = FeatureBuilder(config).fit(tiny)
    schema = builder.schema
    names = [f.name for f in schema.sparse]
    assert names == ["user_id", "user:gender", "item_id", "hour", "weekday"]
    assert schema.item_field == 2 and schema.user_field == 0 and schema.seq_size == 6
    query = Query.from_lists([0, -1], [[0, 1, 2], []], k=2, now=DAY + 3 * 3600.0)
    cands = Candidates.from_flat(
        np.array([0, 2, 3]), np.array([3, 9, 0]), np.zeros(3), channel=None
    )  # 9 is an item the builder never saw
    batch = builder.build(query, cands)
    sparse = batch.sparse.numpy()
    np.testing.assert_array_equal(sparse[:, 0], [2, 2, OOV])
    np.testing.assert_array_equal(sparse[:, 1], [2, 2, PAD])
    np.testing.assert_array_equal(sparse[:, 2], [5, OOV, 2])
    np.testing.assert_array_equal(sparse[:, 3], [5, 5, 5])  # 03:00 UTC -> hour 3 -> code 5
    np.testing.assert_array_equal(sparse[:, 4], [6, 6, 6])  # 1970-01-02 is a Friday (4)
    tags = batch.multi[0].numpy()  # vocab a=2, b=3, c=4; at most 2 per item, 0 pads
    np.testing.assert_array_equal(tags, [[2, 0], [0, 0], [2, 3]])
    assert batch.seq is not None  # last 2 behaviours, right-aligned, item codes
    np.testing.assert_array_equal(batch.seq.numpy(), [[3, 4], [3, 4], [0, 0]])


def test_rank_buckets_and_recall_score(tiny: Dataset) -> None:
    builder = FeatureBuilder(FeatureConfig(seq_len=0, context=[])).fit(tiny, ("a", "b"))
    cands = Candidates(
        offsets=np.array([0, 3]),
        item_idx=np.array([0, 1, 2]),
        scores=np.zeros(3, dtype=np.float32),
        channels=("b", "x"),
        channel_ranks=np.array([[0, 0], [5, -1], [-1, 3]], dtype=np.int32),
        stage_scores={"recall": np.array([0.5, 0.25, 0.0], dtype=np.float32)},
    )
    batch = builder.build(Query.from_lists([0], [[]], k=1), cands)
    sparse = batch.sparse.numpy()
    np.testing.assert_array_equal(sparse[:, -2], [OOV, OOV, OOV])  # channel "a" is absent
    np.testing.assert_array_equal(sparse[:, -1], [2, 4, OOV])  # rank 0 -> 2, rank 5 -> 2+2
    dense = batch.dense.numpy()  # popularity, recall score, rank gain of "a" and of "b"
    np.testing.assert_allclose(dense[:, 1], [0.5, 0.25, 0.0])
    np.testing.assert_allclose(dense[:, 2:], [[0, 1], [0, 1 / np.log2(7)], [0, 0]], rtol=1e-6)


@pytest.mark.parametrize("largest", [0, 6, 7, 300, 100_000])
def test_rank_tables_equal_the_rank_formulas_bit_for_bit(largest: int) -> None:
    """The looked-up rank codes and reciprocals are the values the formulas give, whatever
    the largest rank (tables grow by powers of two) and wherever a rank sits in the batch."""
    from funnelrec.features import FIRST, RANK_BUCKETS, rank_tables

    rng = np.random.default_rng(largest)
    ranks = rng.integers(-1, largest + 1, size=(4097, 3))
    ranks[0, 0], ranks[0, 1] = largest, -1
    codes, reciprocal = rank_tables(int(ranks.max()) + 1)
    bucket = np.minimum(np.log2(1.0 + np.maximum(ranks, 0)), RANK_BUCKETS - 1)
    expected_codes = np.where(ranks >= 0, bucket.astype(np.int64) + FIRST, OOV)
    expected = np.where(ranks >= 0, 1.0 / np.log2(2.0 + np.maximum(ranks, 0)), 0.0)
    np.testing.assert_array_equal(codes[ranks + 1], expected_codes)
    np.testing.assert_array_equal(reciprocal[ranks + 1], expected.astype(np.float32))


def test_trend_counts_only_the_past(tiny: Dataset) -> None:
    config = FeatureConfig(seq_len=0, recall=False, popularity=False, trend_days=[1.5, 30])
    builder = FeatureBuilder(config).fit(tiny)
    query = Query.from_lists([0, 0], [[], []], k=1, now=12 * DAY)
    cands = Candidates.from_flat(np.array([0, 1, 2]), np.array([0, 2]), np.zeros(2), None)
    dense = np.expm1(builder.build(query, cands).dense.numpy())
    # item 0: events at day 1 and 10 -> 0 in the last 1.5 days, 2 in 30; item 2 at day 12: none
    np.testing.assert_allclose(dense, [[0, 2, 0], [0, 0, 0]], atol=1e-5)


def test_hashed_ids_and_identical_after_reload(tiny: Dataset) -> None:
    builder = FeatureBuilder(FeatureConfig(hash_above=2, hash_buckets=16)).fit(tiny, ("c",))
    assert builder.schema.sparse[0].size == 18
    query = Query.from_lists([0, 1], [[0, 1], [3]], k=2, now=5 * DAY)
    cands = Candidates.from_flat(np.array([0, 2, 3]), np.array([1, 2, 3]), np.zeros(3), None)
    meta, tables = builder.state()
    again = FeatureBuilder.from_state(meta, tables)
    a, b = builder.build(query, cands), again.build(query, cands)
    for key, value in a.as_dict().items():
        np.testing.assert_array_equal(value.numpy(), b.as_dict()[key].numpy())
    assert again.schema == builder.schema


def test_unknown_column_is_an_error(tiny: Dataset) -> None:
    with pytest.raises(ValueError, match="no column"):
        FeatureBuilder(FeatureConfig(user_columns=["age"])).fit(tiny)
