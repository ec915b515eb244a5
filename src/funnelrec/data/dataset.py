"""``Dataset``: interactions + item/user tables + optional impressions and knowledge graph.

Columnar (Polars) storage with cached numpy/scipy views for the hot paths. Every frame uses
dense indices (``user_idx``, ``item_idx``) from the dataset's ``IdMap``s; the item table has
exactly one row per item, ordered by ``item_idx``.

Interaction columns: ``user_idx`` (Int64), ``item_idx`` (Int64), ``timestamp`` (Float64, seconds),
one Float32 column per feedback name (``rating``, ``click``, ``like``, ``purchase``...) and an
optional ``weight``. Rows keep file order; ``sequences`` sorts stably by time.
Item columns (all optional but ``item_idx``): ``category`` (Utf8), ``tags`` (List[Utf8]),
``title`` (Utf8), ``created_at`` (Float64), any other attributes.
Impressions (optional): ``user_idx``, ``item_idx``, ``timestamp``, ``clicked`` (Int8) — exposure
logs with negatives, used for CTR estimates and ranking labels.
Knowledge graph (optional): ``kg`` with ``head``/``relation``/``tail`` (Utf8) and
``item_entities`` linking ``item_idx`` to an entity id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.data.ids import IdMap
from funnelrec.errors import DataError, DataWarning
from funnelrec.ragged import IntArray
from funnelrec.types import Interactions, Query

INTERACTION_KEYS = ("user_idx", "item_idx", "timestamp")


@dataclass(eq=False)
class Dataset:
    """Interaction data with its id maps and side tables. Treat as immutable."""

    interactions: pl.DataFrame
    user_ids: IdMap
    item_ids: IdMap
    items: pl.DataFrame
    users: pl.DataFrame | None = None
    impressions: pl.DataFrame | None = None
    kg: pl.DataFrame | None = None
    item_entities: pl.DataFrame | None = None
    feedback: tuple[str, ...] = ()
    name: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_KEYS if c not in self.interactions.columns]
        if missing:
            raise DataError(f"interactions lack column(s) {missing}")
        if self.items.height != len(self.item_ids):
            raise DataError(
                f"item table has {self.items.height} rows but {len(self.item_ids)} items are known"
            )

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        time_col: str | None = "timestamp",
        feedback_cols: tuple[str, ...] = (),
        weight_col: str | None = None,
        items: pl.DataFrame | None = None,
        users: pl.DataFrame | None = None,
        name: str = "dataset",
    ) -> Dataset:
        """Build from a frame of external ids.

        ``items``/``users`` are keyed by ``item_col``/``user_col`` (external ids); items that
        appear only in the item table are still part of the catalogue. Without ``time_col`` the
        row order is the time.
        """
        for col in (user_col, item_col, *feedback_cols, *([time_col] if time_col else [])):
            if col not in frame.columns:
                raise DataError(f"column {col!r} not found; columns are {frame.columns}")
        user_ids = IdMap(name="user_id")
        item_ids = IdMap(name="item_id")
        if users is not None:
            user_ids.extend(users[user_col].to_numpy())
        if items is not None:
            item_ids.extend(items[item_col].to_numpy())
        user_idx = user_ids.extend(frame[user_col].to_numpy())
        n_table = len(item_ids)
        item_idx = item_ids.extend(frame[item_col].to_numpy())
        if items is not None and len(item_ids) > n_table:
            warnings.warn(
                f"{name}: {len(item_ids) - n_table} item id(s) in the interactions are not in "
                f"the item table ({n_table} items); they are added without attributes",
                DataWarning,
                stacklevel=2,
            )
        ts = (
            frame[time_col].cast(pl.Float64).to_numpy()
            if time_col
            else np.arange(frame.height, dtype=np.float64)
        )
        cols: dict[str, Any] = {"user_idx": user_idx, "item_idx": item_idx, "timestamp": ts}
        for fb in feedback_cols:
            cols[fb] = frame[fb].cast(pl.Float32).to_numpy()
        if weight_col:
            cols["weight"] = frame[weight_col].cast(pl.Float32).to_numpy()
        return cls(
            interactions=pl.DataFrame(cols),
            user_ids=user_ids,
            item_ids=item_ids,
            items=_aligned_table(items, item_col, item_ids, "item_idx"),
            users=None if users is None else _aligned_table(users, user_col, user_ids, "user_idx"),
            feedback=tuple(feedback_cols),
            name=name,
        )

    def replace(self, **changes: Any) -> Dataset:
        """Copy with some fields replaced (cached views are not carried over)."""
        return dataclasses.replace(self, **changes)

    def with_interactions(self, interactions: pl.DataFrame) -> Dataset:
        """Same catalogue, users and side tables, another interaction log (e.g. a split part)."""
        return self.replace(interactions=interactions)

    # -- sizes --------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return self.interactions.height

    # -- cached numpy views --------------------------------------------------------------
    @cached_property
    def arrays(self) -> Interactions:
        """The interaction log as numpy arrays (file order)."""
        df = self.interactions
        weight = df["weight"].cast(pl.Float32).to_numpy() if "weight" in df.columns else None
        return Interactions(
            user_idx=df["user_idx"].cast(pl.Int64).to_numpy(),
            item_idx=df["item_idx"].cast(pl.Int64).to_numpy(),
            timestamp=df["timestamp"].cast(pl.Float64).to_numpy(),
            feedback={fb: df[fb].cast(pl.Float32).to_numpy() for fb in self.feedback},
            weight=weight,
        )

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the interaction log and the catalogue/user sizes: two datasets with
        the same fingerprint fit the same models (e.g. to reuse fitted channels)."""
        a = self.arrays
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{self.n_users}:{self.n_items}:{sorted(a.feedback)}".encode())
        feedback = [a.feedback[k] for k in sorted(a.feedback)]
        for arr in (a.user_idx, a.item_idx, a.timestamp, *feedback):
            digest.update(np.ascontiguousarray(arr).tobytes())
        if a.weight is not None:
            digest.update(np.ascontiguousarray(a.weight).tobytes())
        return digest.hexdigest()

    @cached_property
    def time_order(self) -> IntArray:
        """Row permutation sorting by (user, timestamp), ties kept in file order."""
        a = self.arrays
        return np.lexsort((a.timestamp, a.user_idx)).astype(np.int64)

    @cached_property
    def sequences(self) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
        """Every user's behaviour oldest first: ragged ``(offsets[n_users+1], items, ts)``."""
        a, order = self.arrays, self.time_order
        offsets = ragged.offsets_from_lengths(np.bincount(a.user_idx, minlength=self.n_users))
        return offsets, a.item_idx[order], a.timestamp[order]

    @cached_property
    def user_item(self) -> sp.csr_matrix:
        """Binary ``[n_users, n_items]`` CSR of who interacted with what (duplicates collapsed)."""
        a = self.arrays
        mat = sp.csr_matrix(
            (np.ones(len(a.user_idx), dtype=np.float32), (a.user_idx, a.item_idx)),
            shape=(self.n_users, self.n_items),
        )
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat

    @cached_property
    def item_popularity(self) -> npt.NDArray[np.float64]:
        """Interaction count per item ``[n_items]``."""
        return np.bincount(self.arrays.item_idx, minlength=self.n_items).astype(np.float64)

    @cached_property
    def max_timestamp(self) -> float:
        ts = self.arrays.timestamp
        return float(ts.max()) if len(ts) else 0.0

    @cached_property
    def item_categories(self) -> tuple[IntArray, list[str]]:
        """Category code per item ``[n_items]`` (``-1`` when missing) and the category names."""
        if "category" not in self.items.columns:
            return np.full(self.n_items, -1, dtype=np.int64), []
        cats = self.items["category"].cast(pl.Utf8)
        names = sorted(c for c in cats.unique().to_list() if c is not None)
        lookup = {c: i for i, c in enumerate(names)}
        codes = np.asarray([lookup.get(c, -1) if c is not None else -1 for c in cats.to_list()])
        return codes.astype(np.int64), names

    @cached_property
    def item_tags(self) -> tuple[sp.csr_matrix, list[str]]:
        """Binary ``[n_items, n_tags]`` CSR of item tags (category counts as a tag if no tags)."""
        if "tags" in self.items.columns:
            tag_lists = [t or [] for t in self.items["tags"].to_list()]
        elif "category" in self.items.columns:
            tag_lists = [[c] if c is not None else [] for c in self.items["category"].to_list()]
        else:
            return sp.csr_matrix((self.n_items, 0), dtype=np.float32), []
        names = sorted({t for tags in tag_lists for t in tags})
        lookup = {t: i for i, t in enumerate(names)}
        offsets, cols = ragged.from_lists([[lookup[t] for t in tags] for tags in tag_lists])
        mat = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols, offsets), shape=(self.n_items, len(names))
        )
        return mat, names

    @cached_property
    def item_created_at(self) -> npt.NDArray[np.float64]:
        """Creation time per item: the item table's ``created_at`` or the first interaction."""
        first = np.full(self.n_items, np.inf)
        a = self.arrays
        np.minimum.at(first, a.item_idx, a.timestamp)
        if "created_at" in self.items.columns:
            created = self.items["created_at"].cast(pl.Float64).fill_null(np.nan).to_numpy()
            first = np.where(np.isnan(created), first, created)
        return first

    # -- queries --------------------------------------------------------------------------
    def query(
        self,
        user_idx: IntArray,
        k: int,
        *,
        exclude_history: bool = True,
        extra_exclude: Dataset | None = None,
        now: float | None = None,
    ) -> Query:
        """A ``Query`` for ``user_idx`` whose histories come from this dataset.

        Args:
            user_idx: ``[B]`` dense ids (``-1`` allowed: empty history).
            k: slate size.
            exclude_history: exclude the users' own history items.
            extra_exclude: another dataset (e.g. a validation part) whose items are excluded too.
            now: request time; defaults to the latest timestamp in this dataset.
        """
        user_idx = np.asarray(user_idx, dtype=np.int64)
        offsets, items, ts = self.sequences
        h_off, h_items, h_ts = _gather_users(offsets, items, ts, user_idx)
        if exclude_history:
            e_off, e_items = h_off, h_items
            if extra_exclude is not None:
                x_off, x_items, _ = _gather_users(*extra_exclude.sequences, user_idx)
                e_off, e_items = _concat_ragged(e_off, e_items, x_off, x_items)
        else:
            e_off, e_items = ragged.offsets_from_lengths(np.zeros(len(user_idx))), h_items[:0]
        stamp = self.max_timestamp if now is None else now
        return Query(
            user_idx=user_idx,
            history_offsets=h_off,
            history_items=h_items,
            history_ts=h_ts,
            exclude_offsets=e_off,
            exclude_items=e_items,
            k=k,
            now=np.full(len(user_idx), stamp, dtype=np.float64),
        )


def _aligned_table(table: pl.DataFrame | None, key: str, ids: IdMap, idx_col: str) -> pl.DataFrame:
    """Side table with one row per dense index, ordered, keyed by ``idx_col``."""
    base = pl.DataFrame({idx_col: np.arange(len(ids), dtype=np.int64), key: ids.ids})
    if table is None:
        return base.drop(key)
    if table[key].is_duplicated().any():
        dup = table.filter(table[key].is_duplicated())[key][0]
        raise DataError(f"side table has duplicate {key} {dup!r}")
    table = table.with_columns(pl.col(key).cast(base[key].dtype))
    return base.join(table, on=key, how="left").sort(idx_col).drop(key)


def _gather_users(
    offsets: IntArray, items: IntArray, ts: npt.NDArray[np.float64], user_idx: IntArray
) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
    """Ragged rows of ``user_idx`` (``-1`` or out-of-range users get empty rows)."""
    n_users = len(offsets) - 1
    valid = (user_idx >= 0) & (user_idx < n_users)
    safe = np.where(valid, user_idx, 0)
    lens = np.where(valid, ragged.lengths(offsets)[safe], 0)
    new_off = ragged.offsets_from_lengths(lens)
    flat = np.repeat(offsets[safe], lens) + ragged.position_in_row(new_off)
    return new_off, items[flat], ts[flat]


def _concat_ragged(
    a_off: IntArray, a_val: IntArray, b_off: IntArray, b_val: IntArray
) -> tuple[IntArray, IntArray]:
    """Row-wise concatenation of two ragged batches with the same number of rows."""
    rows = np.concatenate([ragged.row_ids(a_off), ragged.row_ids(b_off)])
    vals = np.concatenate([a_val, b_val])
    order = np.argsort(rows, kind="stable")
    return ragged.offsets_from_row_ids(rows[order], len(a_off) - 1), vals[order]
