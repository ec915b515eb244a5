"""Interactions beyond memory: Parquet read lazily (Polars) in bounded chunks of whole users.

``ParquetInteractions(source, chunk_rows=...)`` never holds more than about ``chunk_rows``
events: users are hash-partitioned into ``ceil(rows / chunk_rows)`` chunks and each chunk is
one streaming scan (``collect(engine="streaming")``) keeping only its users' rows, so a chunk
holds every event of its users — what co-occurrence counting and history-based training batches
need — and is returned as time-ordered sequences (ragged ``offsets`` + flat arrays, as
``Dataset.sequences``). Cost: one pass over the files per chunk (columns ``user``, ``item``,
``timestamp`` only). Ids become dense indices through ``IdMap``s built by streaming
``unique`` scans (``item_ids()``), or given ones.
"""

from __future__ import annotations

import dataclasses
import glob
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow.dataset as pads  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from funnelrec.data.ids import IdMap
from funnelrec.errors import DataError
from funnelrec.ragged import IntArray

F64Array = npt.NDArray[np.float64]
_ROW = "__row"
_IDX = "__idx"


@dataclass(frozen=True)
class UserChunk:
    """Every event of some users, oldest first: ``offsets[U+1]``, ``items[E]`` (dense
    item ids), ``ts[E]``; ``users[U]`` their dense user ids (``-1`` when no ``user_ids``)."""

    users: IntArray
    offsets: IntArray
    items: IntArray
    ts: F64Array

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ParquetInteractions:
    """An interaction log in Parquet (one file, a folder of ``*.parquet`` or a glob).

    Attributes:
        source: path, folder (its ``*.parquet``), glob, or a list of files.
        user_col, item_col, time_col: column names (``time_col=None``: file order is time).
        chunk_rows: events held in memory at once (approximately: users are hashed into
            chunks of this expected size; a chunk is never split inside a user).
        seed: hash seed of the user partition.
        partitioned: the files are already one chunk each (``spill`` writes such a set):
            chunk ``i`` is file ``i``, read without filtering.
    """

    source: str | Path | list[Path]
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = "timestamp"
    chunk_rows: int = 2_000_000
    seed: int = 0
    partitioned: bool = False

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise DataError(f"chunk_rows must be >= 1, got {self.chunk_rows}")
        self._files = _files(self.source)
        names = self.scan().collect_schema().names()
        cols = [self.user_col, self.item_col, *([self.time_col] if self.time_col else [])]
        missing = [c for c in cols if c not in names]
        if missing:
            raise DataError(f"{self.source}: column(s) {missing} not found; columns are {names}")

    def scan(self) -> pl.LazyFrame:
        """The whole log as a lazy frame (nothing read yet)."""
        return pl.scan_parquet(self._files)

    def n_rows(self) -> int:
        return int(self.scan().select(pl.len()).collect(engine="streaming").item())

    @cached_property
    def n_chunks(self) -> int:
        """Number of user chunks: ``ceil(rows / chunk_rows)`` (or one per file)."""
        if self.partitioned:
            return len(self._files)
        return max(1, math.ceil(self.n_rows() / self.chunk_rows))

    def item_ids(self) -> IdMap:
        """Distinct items (sorted) as an ``IdMap``, from a streaming scan."""
        return self._ids(self.item_col, "item_id")

    def user_ids(self) -> IdMap:
        """Distinct users (sorted) as an ``IdMap``, from a streaming scan."""
        return self._ids(self.user_col, "user_id")

    def _ids(self, col: str, name: str) -> IdMap:
        uniq = self.scan().select(pl.col(col).unique()).collect(engine="streaming")[col]
        return IdMap(uniq.sort().to_numpy(), name=name)

    def chunks(self, item_ids: IdMap, user_ids: IdMap | None = None) -> Iterator[UserChunk]:
        """Every chunk of users in turn (items unknown to ``item_ids`` are dropped)."""
        n = self.n_chunks
        items = id_table(item_ids, self.item_col)
        users = None if user_ids is None else id_table(user_ids, self.user_col)
        for part in range(n):
            yield self.chunk(part, n, items, users)

    def chunk(
        self, part: int, n_chunks: int, items: pl.DataFrame, users: pl.DataFrame | None
    ) -> UserChunk:
        """Chunk ``part`` of ``n_chunks``; ``items``/``users``: id → ``__idx`` tables."""
        if self.partitioned:
            lazy = pl.scan_parquet(self._files[part])  # rows keep their original _ROW
        else:
            lazy = self.scan().with_row_index(_ROW)
        if n_chunks > 1 and not self.partitioned:
            bucket = pl.col(self.user_col).hash(seed=self.seed) % n_chunks
            lazy = lazy.filter(bucket == part)
        time = pl.col(self.time_col).cast(pl.Float64) if self.time_col else pl.col(_ROW)
        lazy = lazy.select(_ROW, self.user_col, self.item_col, time.cast(pl.Float64).alias("ts"))
        lazy = lazy.join(items.lazy(), on=self.item_col, how="inner")
        user_idx = pl.lit(-1, dtype=pl.Int64).alias("user_idx")
        if users is not None:
            lazy = lazy.join(users.lazy().rename({_IDX: "user_idx"}), on=self.user_col, how="left")
            user_idx = pl.col("user_idx").fill_null(-1)
        frame = (
            lazy.select(self.user_col, user_idx, pl.col(_IDX), "ts", _ROW)
            .sort(self.user_col, "ts", _ROW)
            .collect(engine="streaming")
        )
        return _to_chunk(frame, self.user_col)

    def spill(self, directory: str | Path, batch_rows: int = 1_000_000) -> ParquetInteractions:
        """Write every user chunk to its own file in ``directory`` in ONE pass over the log
        (``batch_rows`` rows in memory at a time); returns the source over those files, whose
        chunks are read without scanning the whole log again."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        n = self.n_chunks
        cols = [self.user_col, self.item_col, *([self.time_col] if self.time_col else [])]
        paths = [out / f"chunk-{i:05d}.parquet" for i in range(n)]
        writers: dict[int, pq.ParquetWriter] = {}
        start = 0
        try:
            dataset = pads.dataset(self._files, format="parquet")
            for batch in dataset.to_batches(columns=cols, batch_size=batch_rows):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                frame = frame.with_row_index(_ROW, offset=start).with_columns(
                    (pl.col(self.user_col).hash(seed=self.seed) % n).alias("__part")
                )
                start += frame.height
                for (part,), rows in frame.partition_by("__part", as_dict=True).items():
                    table = rows.drop("__part").to_arrow()
                    key = int(part)
                    if key not in writers:
                        writers[key] = pq.ParquetWriter(paths[key], table.schema)
                    writers[key].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()
        for path in paths:  # users hashed into no chunk: an empty file keeps chunk i = file i
            if not path.exists():
                pl.DataFrame(schema=self.scan().select(cols).collect_schema()).with_row_index(
                    _ROW
                ).write_parquet(path)
        return dataclasses.replace(self, source=paths, partitioned=True)


def _files(source: str | Path | list[Path]) -> list[str]:
    """What ``pl.scan_parquet`` reads; missing files are a ``DataError`` naming them."""
    if isinstance(source, list):
        missing = [str(f) for f in source if not Path(f).is_file()]
        if missing or not source:
            raise DataError(f"no such Parquet file(s): {missing or 'empty list'}")
        return [str(f) for f in source]
    path = Path(source)
    if path.is_dir():
        found = sorted(path.glob("*.parquet"))
        if not found:
            raise DataError(f"{source}: no .parquet files in this folder")
        return [str(f) for f in found]
    if "*" in str(source):
        found = sorted(Path(p) for p in glob.glob(str(source)))
        if not found:
            raise DataError(f"{source}: no file matches")
        return [str(f) for f in found]
    if not path.exists():
        raise DataError(f"{source}: no such Parquet file or folder")
    return [str(source)]


def id_table(ids: IdMap, col: str) -> pl.DataFrame:
    """``{col: external id, "__idx": dense id}`` for joining a log to dense ids."""
    return pl.DataFrame({col: ids.ids, _IDX: np.arange(len(ids), dtype=np.int64)})


def _to_chunk(frame: pl.DataFrame, user_col: str) -> UserChunk:
    """Sorted ``(user, ts, row)`` frame → ragged sequences."""
    if frame.height == 0:
        empty = np.zeros(0, dtype=np.int64)
        return UserChunk(empty, np.zeros(1, dtype=np.int64), empty, np.zeros(0))
    starts = frame[user_col].ne_missing(frame[user_col].shift(1)).fill_null(True).to_numpy()
    first = np.flatnonzero(starts).astype(np.int64)
    offsets = np.append(first, frame.height).astype(np.int64)
    return UserChunk(
        users=frame["user_idx"].to_numpy()[first].astype(np.int64),
        offsets=offsets,
        items=frame[_IDX].to_numpy().astype(np.int64),
        ts=frame["ts"].to_numpy().astype(np.float64),
    )


def item_counts(source: ParquetInteractions, item_ids: IdMap) -> F64Array:
    """Events per item ``[n_items]`` (streaming group-by)."""
    table = id_table(item_ids, source.item_col)
    counts = (
        source.scan()
        .join(table.lazy(), on=source.item_col, how="inner")
        .group_by(_IDX)
        .len()
        .collect(engine="streaming")
    )
    out = np.zeros(len(item_ids), dtype=np.float64)
    out[counts[_IDX].to_numpy()] = counts["len"].to_numpy()
    return out
