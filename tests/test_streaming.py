"""Data beyond memory: Parquet read in chunks of whole users; item-CF built chunk by chunk
equals the in-memory graph; training batches stream chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.data.streaming import ParquetInteractions
from funnelrec.errors import DataError
from funnelrec.recall.itemcf import ItemCFRecall
from funnelrec.train import distributed
from funnelrec.train.stream import StreamingPairBatches

CHUNK = 3000  # 12,000 events -> 4 chunks of whole users


@pytest.fixture(scope="module")
def log(world: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world's log with external ids, split over two Parquet files."""
    a = world.arrays
    frame = pl.DataFrame(
        {
            "user_id": world.user_ids.external(a.user_idx),
            "item_id": world.item_ids.external(a.item_idx),
            "timestamp": a.timestamp,
        }
    )
    folder = tmp_path_factory.mktemp("log")
    half = frame.height // 2
    frame[:half].write_parquet(folder / "part-0.parquet")
    frame[half:].write_parquet(folder / "part-1.parquet")
    return folder


def test_chunks_hold_whole_users_in_time_order(world: Dataset, log: Path) -> None:
    source = ParquetInteractions(log, chunk_rows=CHUNK)
    assert source.n_rows() == len(world) and source.n_chunks == 4
    offsets, items, _ = world.sequences
    seen: list[int] = []
    for chunk in source.chunks(world.item_ids, world.user_ids):
        assert len(chunk) < 2 * CHUNK  # bounded by the setting, not by the log
        for row, user in enumerate(chunk.users.tolist()):
            mine = chunk.items[chunk.offsets[row] : chunk.offsets[row + 1]]
            np.testing.assert_array_equal(mine, items[offsets[user] : offsets[user + 1]])
        seen += chunk.users.tolist()
    assert sorted(seen) == sorted(np.flatnonzero(ragged.lengths(offsets) > 0).tolist())


@pytest.mark.parametrize("blocks", [{"item_blocks": 1}, {"item_blocks": 3}, {"max_pairs": 10_000}])
def test_chunked_itemcf_equals_in_memory(world: Dataset, log: Path, blocks: dict[str, int]) -> None:
    """Whatever the chunks and item blocks (``max_pairs=10_000``: 24 automatic blocks)."""
    source = ParquetInteractions(log, chunk_rows=CHUNK)
    for params in ({"n_neighbours": world.n_items}, {}):  # unpruned graph, then the default
        full = ItemCFRecall(**params).fit(world).similarity_
        streamed = ItemCFRecall(**params).fit_stream(source, world.item_ids, **blocks)
        got = streamed.similarity_
        assert got.shape == full.shape and got.nnz == full.nnz
        np.testing.assert_allclose(
            np.sort(got.toarray(), axis=1), np.sort(full.toarray(), axis=1), rtol=1e-5
        )
    np.testing.assert_allclose(got.toarray(), full.toarray(), rtol=1e-5, atol=1e-7)
    # ... and the same neighbours serve the same recommendations
    query = world.query(np.arange(50), 10)
    same = [
        len(set(a) & set(b)) / max(len(a), 1)
        for a, b in zip(
            streamed.retrieve(query, 10).to_lists(),
            ItemCFRecall().fit(world).retrieve(query, 10).to_lists(),
            strict=True,
        )
    ]
    assert np.mean(same) > 0.99


def test_streaming_batches_cover_every_pair_once_per_epoch(world: Dataset, log: Path) -> None:
    source = ParquetInteractions(log, chunk_rows=CHUNK)
    batches = StreamingPairBatches(source, world.item_ids, 500, user_ids=world.user_ids)
    rng = np.random.default_rng(0)
    pairs = [
        (u, i)
        for b in batches(1, rng)
        for u, i in zip(b["user"].tolist(), b["item"].tolist(), strict=True)
    ]
    a = world.arrays
    assert sorted(pairs) == sorted(zip(a.user_idx.tolist(), a.item_idx.tolist(), strict=True))
    first = next(iter(batches(2, rng)))["user"][:20].tolist()
    assert first != [u for u, _ in pairs[:20]]  # reshuffled every epoch


def test_each_rank_reads_its_own_chunks(
    world: Dataset, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ParquetInteractions(log, chunk_rows=CHUNK)
    batches = StreamingPairBatches(source, world.item_ids, 500, user_ids=world.user_ids)
    assert StreamingPairBatches.rank_sharded  # the loop must not shard it again
    users_of_rank = []
    for rank in (0, 1):
        ctx = distributed.Context(rank=rank, world_size=2, local_rank=rank, backend="gloo")
        monkeypatch.setattr(distributed, "active", lambda ctx=ctx: ctx)
        rng = np.random.default_rng(rank)  # ranks' generators differ; the chunk order must not
        users_of_rank.append({u for b in batches(3, rng) for u in b["user"].tolist()})
    assert users_of_rank[0] and users_of_rank[1]
    assert not users_of_rank[0] & users_of_rank[1]  # whole users, disjoint chunks
    assert users_of_rank[0] | users_of_rank[1] == set(world.arrays.user_idx.tolist())


def test_spilled_chunks_equal_scanned_chunks(world: Dataset, log: Path, tmp_path: Path) -> None:
    source = ParquetInteractions(log, chunk_rows=CHUNK)
    spilled = source.spill(tmp_path / "spill", batch_rows=2500)  # one pass, 5 batches
    assert spilled.partitioned and spilled.n_chunks == source.n_chunks == 4
    pairs = zip(
        source.chunks(world.item_ids, world.user_ids),
        spilled.chunks(world.item_ids, world.user_ids),
        strict=True,
    )
    for a, b in pairs:
        for name in ("users", "offsets", "items", "ts"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    full = ItemCFRecall().fit(world).similarity_
    got = ItemCFRecall().fit_stream(spilled, world.item_ids, max_pairs=50_000).similarity_
    np.testing.assert_allclose(got.toarray(), full.toarray(), rtol=1e-5, atol=1e-7)


def test_bad_sources_are_named(log: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope"):
        ParquetInteractions(tmp_path / "nope.parquet")
    with pytest.raises(DataError, match="'who'"):
        ParquetInteractions(log, user_col="who")
    with pytest.raises(DataError, match="chunk_rows"):
        ParquetInteractions(log, chunk_rows=0)
