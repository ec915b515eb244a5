"""Containers passed between stages: ``Interactions``, ``Query``, ``Candidates``, ``Slate``.

All are batch-first. Ragged per-user data uses ``offsets[B+1]`` + flat arrays (see
``funnelrec.ragged``). Item and user indices are dense ``int64`` ids from ``data.ids.IdMap``;
``-1`` marks a user unknown to the model (cold start).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import numpy.typing as npt

from funnelrec import ragged
from funnelrec.ragged import BoolArray, FloatArray, IntArray

ObjArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class Interactions:
    """Flat interaction log (one row per event), all arrays of length N.

    Attributes:
        user_idx: dense user ids ``[N]``.
        item_idx: dense item ids ``[N]``.
        timestamp: event time in seconds ``[N]`` (float64).
        feedback: named feedback columns ``{name: [N]}`` (rating, click, like, purchase...).
        weight: optional per-event weight ``[N]``.
    """

    user_idx: IntArray
    item_idx: IntArray
    timestamp: npt.NDArray[np.float64]
    feedback: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    weight: npt.NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.user_idx)


@dataclass(frozen=True)
class Query:
    """A batch of ``B`` recommendation requests.

    Attributes:
        user_idx: ``[B]`` dense user ids, ``-1`` for users the model has never seen.
        history_offsets, history_items, history_ts: the users' behaviour, oldest first
            (ragged, ``[B+1]`` / ``[H]`` / ``[H]``).
        exclude_offsets, exclude_items: items that must never be returned (ragged).
        k: number of items wanted in the final slate.
        now: ``[B]`` request time in seconds (drives time decay and freshness).
        context: optional per-request arrays ``{name: [B, ...]}``.
    """

    user_idx: IntArray
    history_offsets: IntArray
    history_items: IntArray
    history_ts: npt.NDArray[np.float64]
    exclude_offsets: IntArray
    exclude_items: IntArray
    k: int
    now: npt.NDArray[np.float64]
    context: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = len(self.user_idx)
        if len(self.history_offsets) != b + 1 or len(self.exclude_offsets) != b + 1:
            raise ValueError("history/exclude offsets must have batch_size + 1 entries")
        if len(self.now) != b:
            raise ValueError("now must have one entry per query")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    @property
    def batch_size(self) -> int:
        """Number of queries ``B``."""
        return len(self.user_idx)

    @classmethod
    def from_lists(
        cls,
        user_idx: list[int],
        histories: list[list[int]],
        k: int,
        exclude: list[list[int]] | None = None,
        now: float = 0.0,
    ) -> Query:
        """Build a query from Python lists (tests, single requests)."""
        h_off, h_items = ragged.from_lists(histories)
        no_exclusions: list[list[int]] = [[] for _ in user_idx]
        e_off, e_items = ragged.from_lists(exclude if exclude is not None else no_exclusions)
        return cls(
            user_idx=np.asarray(user_idx, dtype=np.int64),
            history_offsets=h_off,
            history_items=h_items,
            history_ts=np.zeros(len(h_items), dtype=np.float64),
            exclude_offsets=e_off,
            exclude_items=e_items,
            k=k,
            now=np.full(len(user_idx), now, dtype=np.float64),
        )

    def history(self, row: int) -> IntArray:
        """Items of one query's history, oldest first."""
        return self.history_items[self.history_offsets[row] : self.history_offsets[row + 1]]

    def recent_history(self, last_k: int) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
        """The last ``last_k`` behaviours of every query as ragged ``(offsets, items, ts)``."""
        lens = ragged.lengths(self.history_offsets)
        pos = ragged.position_in_row(self.history_offsets)
        keep = pos >= (lens - last_k)[ragged.row_ids(self.history_offsets)]
        offsets = ragged.offsets_from_lengths(np.minimum(lens, last_k))
        return offsets, self.history_items[keep], self.history_ts[keep]

    def without_exclusions(self) -> Query:
        """Same queries with empty exclusion lists (seen items may be recommended again)."""
        empty = np.zeros(self.batch_size + 1, dtype=np.int64)
        return dataclasses.replace(
            self, exclude_offsets=empty, exclude_items=self.exclude_items[:0]
        )

    def with_k(self, k: int) -> Query:
        """Same queries wanting ``k`` items."""
        return dataclasses.replace(self, k=k)

    def select(self, rows: IntArray) -> Query:
        """Sub-batch with the given rows, in the given order."""
        h_off, h_sel = _select_rows(self.history_offsets, rows)
        e_off, e_sel = _select_rows(self.exclude_offsets, rows)
        return Query(
            user_idx=self.user_idx[rows],
            history_offsets=h_off,
            history_items=self.history_items[h_sel],
            history_ts=self.history_ts[h_sel],
            exclude_offsets=e_off,
            exclude_items=self.exclude_items[e_sel],
            k=self.k,
            now=self.now[rows],
            context={name: arr[rows] for name, arr in self.context.items()},
        )


def _select_rows(offsets: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """Offsets and flat element indices of the selected rows of a ragged batch."""
    lens = ragged.lengths(offsets)[rows]
    new_offsets = ragged.offsets_from_lengths(lens)
    starts = np.repeat(offsets[rows], lens)
    flat = starts + ragged.position_in_row(new_offsets)
    return new_offsets, flat.astype(np.int64)


@dataclass(frozen=True)
class Candidates:
    """Ragged batch of scored items, one row per query.

    Recall, pre-rank and rank outputs are sorted by score (descending); after re-ranking the
    row order is the slate order and scores need not be monotone.

    Attributes:
        offsets: ``[B+1]`` row boundaries.
        item_idx: ``[N]`` dense item ids.
        scores: ``[N]`` float32 score of the stage that produced this batch.
        channels: names of the recall channels referenced by ``source`` / ``channel_ranks``.
        source: ``[N]`` index into ``channels`` of the channel that contributed the item.
        channel_ranks: ``[N, C]`` 0-based rank of the item in each channel, ``-1`` if absent
            (provenance after a merge); ``None`` before merging.
        stage_scores: ``{stage: [N]}`` scores the item received at earlier stages.
        reasons: ``[N]`` optional human-readable explanations (object array of ``str``).
    """

    offsets: IntArray
    item_idx: IntArray
    scores: FloatArray
    channels: tuple[str, ...] = ()
    source: npt.NDArray[np.int16] | None = None
    channel_ranks: npt.NDArray[np.int32] | None = None
    stage_scores: dict[str, FloatArray] = field(default_factory=dict)
    reasons: ObjArray | None = None

    def __post_init__(self) -> None:
        n = len(self.item_idx)
        if self.offsets[-1] != n or len(self.scores) != n:
            raise ValueError(
                f"ragged batch is inconsistent: offsets end at {self.offsets[-1]}, "
                f"{n} items, {len(self.scores)} scores"
            )

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, batch_size: int, channel: str | None = None) -> Self:
        """``batch_size`` empty rows (``offsets`` ``[B+1]`` of zeros)."""
        return cls.from_flat(
            np.zeros(batch_size + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.float32),
            channel,
        )

    @classmethod
    def from_flat(
        cls,
        offsets: IntArray,
        item_idx: IntArray,
        scores: npt.NDArray[np.floating],
        channel: str | None,
    ) -> Self:
        """Candidates from one channel (or stage); ``channel`` names the provenance."""
        channels = (channel,) if channel else ()
        source = np.zeros(len(item_idx), dtype=np.int16) if channel else None
        return cls(
            offsets=offsets.astype(np.int64),
            item_idx=item_idx.astype(np.int64),
            scores=scores.astype(np.float32),
            channels=channels,
            source=source,
        )

    @classmethod
    def from_dense(
        cls, items: IntArray, scores: npt.NDArray[np.floating], channel: str | None = None
    ) -> Self:
        """From ``[B, K]`` matrices; entries with ``items < 0`` or non-finite score are dropped."""
        valid = (items >= 0) & np.isfinite(scores)
        offsets = ragged.offsets_from_lengths(valid.sum(axis=1))
        return cls.from_flat(offsets, items[valid], scores[valid], channel)

    # -- shape --------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Number of rows ``B``."""
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return len(self.item_idx)

    def lengths(self) -> IntArray:
        """``[B]`` items per row."""
        return ragged.lengths(self.offsets)

    def row_ids(self) -> IntArray:
        """``[N]`` row of each element."""
        return ragged.row_ids(self.offsets)

    def row(self, b: int) -> tuple[IntArray, FloatArray]:
        """Items and scores of row ``b`` (views, ``[n_b]`` each)."""
        lo, hi = int(self.offsets[b]), int(self.offsets[b + 1])
        return self.item_idx[lo:hi], self.scores[lo:hi]

    def to_lists(self) -> list[list[int]]:
        """Items of every row as Python lists (tests, JSON)."""
        return [self.row(b)[0].tolist() for b in range(self.batch_size)]

    # -- element-wise selection (keeps every aligned array in step) ----------------------
    def take(self, idx: IntArray) -> Self:
        """Keep elements ``idx`` (positions into the flat arrays), grouped by row in that order."""
        rows = self.row_ids()[idx]
        if len(rows) > 1 and np.any(np.diff(rows) < 0):
            raise ValueError("take() needs indices grouped by row in ascending row order")
        return self._gather(idx, ragged.offsets_from_row_ids(rows, self.batch_size))

    def _gather(self, idx: IntArray, offsets: IntArray) -> Self:
        """Elements ``idx`` with the given new ``offsets`` (the caller knows them)."""
        return dataclasses.replace(
            self,
            offsets=offsets,
            item_idx=self.item_idx[idx],
            scores=self.scores[idx],
            source=None if self.source is None else self.source[idx],
            channel_ranks=None if self.channel_ranks is None else self.channel_ranks[idx],
            stage_scores={k: v[idx] for k, v in self.stage_scores.items()},
            reasons=None if self.reasons is None else self.reasons[idx],
        )

    def filter(self, keep: BoolArray) -> Self:
        """Keep the elements where ``keep`` ``[N]`` is True (order kept)."""
        if len(keep) != len(self):
            raise ValueError(f"filter() needs one flag per element: {len(keep)} for {len(self)}")
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        return self._gather(np.flatnonzero(keep).astype(np.int64), kept_before[self.offsets])

    def sorted(self) -> Self:
        """Each row ordered by descending score (ties keep their current order)."""
        return self._gather(ragged.sort_within_rows(self.offsets, self.scores), self.offsets)

    def truncate(self, k: int) -> Self:
        """Keep the first ``k`` items of each row (call on sorted candidates)."""
        return self.filter(ragged.first_k_mask(self.offsets, k))

    def topk(self, k: int) -> Self:
        """The ``k`` best-scored items of each row, best first."""
        return self.sorted().truncate(k)

    def with_scores(self, scores: npt.NDArray[np.floating], stage: str | None = None) -> Self:
        """New scores (same items); recorded under ``stage_scores[stage]`` when named, so
        every stage's score stays visible after later stages re-score."""
        new = np.asarray(scores, dtype=np.float32)
        stage_scores = dict(self.stage_scores)
        if stage is not None:
            stage_scores[stage] = new
        return dataclasses.replace(self, scores=new, stage_scores=stage_scores)

    def excluding(self, query: Query) -> Self:
        """Drop items in the query's exclusion lists."""
        banned = ragged.membership(
            self.offsets, self.item_idx, query.exclude_offsets, query.exclude_items
        )
        return self.filter(~banned)

    def dense(self, width: int) -> IntArray:
        """Items padded to ``[B, width]`` with ``-1``."""
        out = ragged.to_dense(self.offsets, self.item_idx, width, -1)
        return out.astype(np.int64)

    def source_names(self) -> list[str]:
        """Name of the contributing channel of each element (``""`` when unknown)."""
        if self.source is None:
            return [""] * len(self)
        names = np.asarray((*self.channels, ""), dtype=object)
        return list(names[self.source])


@dataclass(frozen=True)
class Slate(Candidates):
    """The final, ordered recommendation list per query (same layout as ``Candidates``)."""

    @classmethod
    def of(cls, candidates: Candidates) -> Slate:
        """The same rows as a ``Slate`` (no copy of the arrays)."""
        fields = {f.name: getattr(candidates, f.name) for f in dataclasses.fields(Candidates)}
        return cls(**fields)
