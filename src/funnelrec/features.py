"""Feature pipeline: declared feature specs → a typed ``Batch`` for the ranking models.

``FeatureBuilder.build(query, candidates)`` is the one code path from a ``(Query,
Candidates)`` pair to model inputs, used alike for training examples and for serving, so
there is no train/serve skew. At ``fit`` every user- and item-side feature is encoded once
into code tables (``[n_users+1, F]``, ``[n_items+1, F]``; the last row is the unknown
user/item); ``build`` only gathers rows, adds the request context (hour, weekday), the
candidates' recall provenance and the user's last ``K`` behaviours. Codes: ``0`` padding /
missing, ``1`` out of vocabulary, ``2..`` known (``funnelrec.encoders``); id vocabularies
larger than ``hash_above`` are hashed into ``hash_buckets`` codes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import Field

from funnelrec import provenance, ragged
from funnelrec.batch import Batch, FieldSpec, Schema
from funnelrec.content.store import vector_column
from funnelrec.data.dataset import Dataset
from funnelrec.encoders import (
    FIRST,
    OOV,
    Buckets,
    F32Array,
    Scaler,
    Vocab,
    auto_columns,
    hash_ints,
    pad_rows,
)
from funnelrec.ragged import IntArray
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

__all__ = ["Batch", "FeatureBuilder", "FeatureConfig", "FieldSpec", "Schema"]
RANK_BUCKETS = 12


def _default_context() -> list[Literal["hour", "weekday"]]:
    return ["hour", "weekday"]


class FeatureConfig(Params):
    """Which features a ranking model sees.

    Attributes:
        user_id, item_id: id fields (the user id is the long-term interest input).
        user_columns, item_columns: user/item table columns (``None``: text columns with at
            most 1000 distinct values and not more than half the rows — titles are skipped —
            and numeric columns); strings are vocabularies, numbers quantile ``buckets``.
        prefix: keep the first ``n`` characters of a string column (e.g. ``{"zip": 2}``).
        tags, max_tags: the item ``tags`` list as a multi-valued field.
        context: request-time fields; ``context_time``: take them from ``query.now`` or from
            the user's latest behaviour.
        seq_len: last ``K`` behaviours (short-term interest, DIN); ``0``: none.
        popularity: log item interaction count as a dense field.
        trend_days: for each window ``w``, log of the item's interactions in the ``w`` days
            before the reference time (``context_time``), counted in the fitted data — leak-free
            for training queries cut in the past; plus the log of the history length.
        vector_columns: item-table columns of precomputed vectors (fixed-length float lists,
            e.g. content vectors from ``funnelrec.content``); each dimension is a dense item
            field (items without a vector: zeros).
        recall: recall provenance: per channel a log2 rank-bucket field and the rank gain
            ``1 / log2(2 + rank)`` (0 when absent), and the merged recall score.
        min_count: values seen fewer times are out of vocabulary.
    """

    user_id: bool = True
    item_id: bool = True
    user_columns: list[str] | None = None
    item_columns: list[str] | None = None
    prefix: dict[str, int] = Field(default_factory=dict)
    buckets: int = Field(default=10, ge=2)
    tags: bool = True
    max_tags: int = Field(default=6, ge=1)
    context: list[Literal["hour", "weekday"]] = Field(default_factory=_default_context)
    context_time: Literal["now", "last_event"] = "now"
    seq_len: int = Field(default=20, ge=0)
    popularity: bool = True
    trend_days: list[float] = Field(default_factory=list)
    vector_columns: list[str] = Field(default_factory=list)
    recall: bool = True
    min_count: int = Field(default=1, ge=1)
    hash_above: int = Field(default=1_000_000, ge=1)
    hash_buckets: int = Field(default=1 << 20, ge=2)


class FeatureBuilder:
    """Fitted feature tables plus ``build(query, candidates) -> Batch``."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.channels: tuple[str, ...] = ()
        self.fields: dict[str, list[FieldSpec]] = {}
        self.tables: dict[str, np.ndarray[Any, Any]] = {}

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, dataset: Dataset, channels: Sequence[str] = ()) -> Self:
        """Encode the user and item tables of ``dataset``; ``channels``: recall channel names
        whose ranks become fields (when ``config.recall``)."""
        c = self.config
        self.channels = tuple(channels) if c.recall else ()
        user_fields, user_codes = self._table_codes(dataset.users, dataset.n_users, "user")
        item_fields, item_codes = self._table_codes(dataset.items, dataset.n_items, "item")
        self.tables = {"user": user_codes, "item": item_codes}
        self.fields = {"user": user_fields, "item": item_fields, "multi": [], "dense": []}
        if c.tags and "tags" in dataset.items.columns:
            tags = dataset.items["tags"].to_list()
            vocab = Vocab.fit((t for row in tags for t in row or []), c.min_count)
            self.tables["tags"] = pad_rows([vocab.encode(r or []) for r in tags], c.max_tags)
            self.fields["multi"].append(FieldSpec("tags", vocab.size, "item", c.max_tags))
        dense = np.zeros((dataset.n_items + 1, 0), dtype=np.float32)
        if c.popularity:
            pop = np.append(dataset.item_popularity, 0.0)
            dense = Scaler.fit(pop[:-1], log=True).encode(pop)[:, None]
            self.fields["dense"].append(FieldSpec("popularity", 1, "item"))
        for name in c.vector_columns:
            vectors, _ = vector_column(dataset.items, name)
            dense = np.concatenate(
                [dense, np.vstack([vectors, np.zeros((1, vectors.shape[1]), np.float32)])], axis=1
            )
            self.fields["dense"] += [
                FieldSpec(f"{name}:{j}", 1, "item") for j in range(vectors.shape[1])
            ]
        self.tables["item_dense"] = dense
        self.fields["context"] = [FieldSpec(n, FIRST + {"hour": 24, "weekday": 7}[n], "context")
                                  for n in c.context]  # fmt: skip
        self.fields["rank"] = [
            FieldSpec(f"rank:{ch}", FIRST + RANK_BUCKETS, "candidate") for ch in self.channels
        ]
        if c.recall:
            self.fields["dense"].append(FieldSpec("recall_score", 1, "candidate"))
            self.fields["dense"] += [
                FieldSpec(f"rank_gain:{ch}", 1, "candidate") for ch in self.channels
            ]
        if c.trend_days:
            a = dataset.arrays
            span = _span(a.timestamp)
            self.tables["item_time"] = np.sort(a.item_idx * span + a.timestamp)
            self.tables["item_time_span"] = np.asarray([span])
            self.fields["dense"] += [FieldSpec(f"trend_{w:g}d", 1, "item") for w in c.trend_days]
            self.fields["dense"].append(FieldSpec("history_len", 1, "user"))
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        return self

    def _table_codes(
        self, table: pl.DataFrame | None, n: int, side: Literal["user", "item"]
    ) -> tuple[list[FieldSpec], IntArray]:
        """Fields and ``[n+1, F]`` codes of one side (id + attribute columns; last row unknown)."""
        c = self.config
        fields: list[FieldSpec] = []
        cols: list[IntArray] = []
        if c.user_id if side == "user" else c.item_id:
            size, codes = self.id_codes(np.arange(n, dtype=np.int64), n)
            fields.append(FieldSpec(f"{side}_id", size, side))
            cols.append(np.append(codes, OOV))
        wanted = c.user_columns if side == "user" else c.item_columns
        for name in auto_columns(table, wanted, side):
            assert table is not None
            size, codes = self._encode_column(table[name])
            fields.append(FieldSpec(f"{side}:{name}", size, side))
            cols.append(np.append(codes, 0))
        out = np.stack(cols, 1) if cols else np.zeros((n + 1, 0), dtype=np.int64)
        return fields, out.astype(np.int64)

    def _encode_column(self, series: pl.Series) -> tuple[int, IntArray]:
        c = self.config
        if series.dtype.is_numeric():
            values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
            buckets = Buckets.fit(values, c.buckets)
            return buckets.size, buckets.encode(values)
        text = series.cast(pl.Utf8)
        if series.name in c.prefix:
            text = text.str.slice(0, c.prefix[series.name])
        vocab = Vocab.fit(text.to_list(), c.min_count)
        return vocab.size, vocab.encode(text.to_list())

    def id_codes(self, ids: IntArray, n: int) -> tuple[int, IntArray]:
        """Vocabulary size and codes of dense ids in ``[0, n)`` (others OOV; hashed if huge)."""
        c = self.config
        known = (ids >= 0) & (ids < n)
        if n > c.hash_above:
            return FIRST + c.hash_buckets, np.where(known, hash_ints(ids, c.hash_buckets), OOV)
        return FIRST + n, np.where(known, ids + FIRST, OOV).astype(np.int64)

    # -- schema -----------------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        """The layout of the batches ``build`` returns."""
        if not self.fields:
            raise RuntimeError("FeatureBuilder is not fitted")
        f = self.fields
        sparse = (*f["user"], *f["item"], *f["context"], *f["rank"])
        names = [s.name for s in sparse]
        return Schema(
            sparse=sparse,
            multi=tuple(f["multi"]),
            dense=tuple(f["dense"]),
            seq_len=self.config.seq_len,
            seq_size=self.id_codes(np.zeros(0, dtype=np.int64), self.n_items)[0],
            item_field=names.index("item_id") if "item_id" in names else None,
            user_field=names.index("user_id") if "user_id" in names else None,
        )

    # -- building ---------------------------------------------------------------------------
    def build(self, query: Query, candidates: Candidates, with_seq: bool = True) -> Batch:
        """Model inputs of every (query row, candidate) pair, in the candidates' flat order;
        ``with_seq=False`` leaves out the ``[N, K]`` behaviour block (a model that reads it
        then takes each query's ``sequence`` once: ``CTRModel.score_queries``)."""
        if not self.fields:
            raise RuntimeError("FeatureBuilder is not fitted")
        rows = candidates.row_ids()
        users = query.user_idx
        users = np.where((users >= 0) & (users < self.n_users), users, self.n_users)[rows]
        items = candidates.item_idx
        items = np.where((items >= 0) & (items < self.n_items), items, self.n_items)
        sparse = [self.tables["user"][users], self.tables["item"][items]]
        sparse.append(self._context(query)[rows])
        ranks = self._channel_ranks(candidates)
        codes, reciprocal = rank_tables(int(ranks.max(initial=0)) + 1)
        sparse.append(codes[ranks + 1])
        dense: list[F32Array] = [self.tables["item_dense"][items]]
        if self.config.recall:
            score = candidates.stage_scores.get("recall", np.zeros(len(candidates)))
            dense.append(np.asarray(score, dtype=np.float32)[:, None])
            dense.append(reciprocal[ranks + 1])
        if self.config.trend_days:
            dense.append(self._trend(query, items, rows))
        multi = [self.tables["tags"][items]] if self.fields["multi"] else []
        return Batch.from_numpy(
            sparse=np.concatenate(sparse, axis=1),
            dense=np.concatenate(dense, axis=1),
            multi=multi,
            seq=self.sequence(query)[rows] if with_seq else None,
        )

    def _reference_time(self, query: Query) -> npt.NDArray[np.float64]:
        """``[B]`` the request time, or the user's latest behaviour (``last_event``)."""
        stamp = query.now
        if self.config.context_time == "last_event" and len(query.history_ts):
            lens = ragged.lengths(query.history_offsets)
            last = np.maximum(query.history_offsets[1:] - 1, 0)
            stamp = np.where(lens > 0, query.history_ts[last], stamp)
        return np.asarray(stamp, dtype=np.float64)

    def _trend(self, query: Query, items: IntArray, rows: IntArray) -> F32Array:
        """``[N, W+1]``: log1p of each item's events in every window before the reference
        time, and log1p of the query's history length."""
        keys, span = self.tables["item_time"], float(self.tables["item_time_span"][0])
        ref = np.clip(self._reference_time(query)[rows], 0.0, span / 2)
        base = items * span + ref
        hi = np.searchsorted(keys, base, side="left")
        cols = [
            hi - np.searchsorted(keys, np.maximum(base - w * 86400.0, items * span))
            for w in self.config.trend_days
        ]
        cols.append(ragged.lengths(query.history_offsets)[rows])
        return np.log1p(np.stack(cols, 1).astype(np.float32))

    def _context(self, query: Query) -> IntArray:
        """``[B, C]`` request-context codes (hour of day, weekday; UTC)."""
        secs = self._reference_time(query).astype(np.int64)
        values = {"hour": (secs // 3600) % 24, "weekday": (secs // 86400 + 3) % 7}
        cols = [values[name] + FIRST for name in self.config.context]
        return np.stack(cols, 1) if cols else np.zeros((query.batch_size, 0), dtype=np.int64)

    def _channel_ranks(self, candidates: Candidates) -> IntArray:
        """``[N, C]`` 0-based rank of each candidate in each fitted channel (``-1``: absent)."""
        return provenance.ranks_for(candidates, self.channels)

    def sequence(self, query: Query) -> IntArray:
        """``[B, K]`` codes of each query's last ``K`` behaviours, right-aligned (newest last,
        ``0`` padding on the left)."""
        k = self.config.seq_len
        out = np.zeros((query.batch_size, k), dtype=np.int64)
        if k == 0:
            return out
        offsets, items, _ = query.recent_history(k)
        lens = ragged.lengths(offsets)
        rows = ragged.row_ids(offsets)
        cols = ragged.position_in_row(offsets) + (k - lens)[rows]
        out[rows, cols] = self.id_codes(items, self.n_items)[1]
        return out

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
        """JSON-able description and the code tables (for ``from_state``)."""
        meta = {
            "config": self.config.model_dump(mode="json"),
            "channels": list(self.channels),
            "fields": {k: [s.to_json() for s in v] for k, v in self.fields.items()},
            "n_users": self.n_users,
            "n_items": self.n_items,
        }
        return meta, dict(self.tables)

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], tables: Mapping[str, np.ndarray[Any, Any]]
    ) -> FeatureBuilder:
        builder = cls(FeatureConfig.model_validate(meta["config"]))
        builder.channels = tuple(meta["channels"])
        builder.fields = {k: [FieldSpec.from_json(s) for s in v] for k, v in meta["fields"].items()}
        builder.tables = dict(tables)
        builder.n_users, builder.n_items = int(meta["n_users"]), int(meta["n_items"])
        return builder


def rank_tables(size: int) -> tuple[IntArray, F32Array]:
    """The channel-rank features of ranks ``-1 .. size - 1`` at least (index ``rank + 1``): the
    log2 bucket code (``OOV`` for ``-1``, absent) and the reciprocal ``1 / log2(2 + rank)``
    (``0`` absent). Tables of a power-of-two size, built once: a lookup per (pair, channel)
    instead of two logarithms."""
    return _rank_tables(1 << max(size, 1).bit_length())


@functools.lru_cache(maxsize=8)
def _rank_tables(size: int) -> tuple[IntArray, F32Array]:
    ranks = np.arange(-1, size - 1, dtype=np.int64)
    bucket = np.minimum(np.log2(1.0 + np.maximum(ranks, 0)), RANK_BUCKETS - 1)
    codes = np.where(ranks >= 0, bucket.astype(np.int64) + FIRST, OOV)
    reciprocal = np.where(ranks >= 0, 1.0 / np.log2(2.0 + np.maximum(ranks, 0)), 0.0)
    codes.flags.writeable = False
    out = reciprocal.astype(np.float32)
    out.flags.writeable = False
    return codes, out


def _span(ts: npt.NDArray[np.float64]) -> float:
    """A time span larger than every timestamp (keys ``item * span + t`` never overlap)."""
    return float(2.0 ** np.ceil(np.log2(max(float(ts.max(initial=0.0)), 1.0) * 4 + 1.0)))
