"""Evaluation protocols (DESIGN.md): ``loo``, ``rs811``, ``temporal``, ``split622``.

Every split has train / valid / test parts over the same catalogue and id maps. Models fit
on ``train``; ``valid`` serves early stopping; at test time the users' history is train +
valid (``Split.test_query``) and those items are excluded from the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import polars as pl

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.ragged import IntArray
from funnelrec.types import Query

Protocol = Literal["loo", "rs811", "temporal", "split622"]
PROTOCOLS: tuple[str, ...] = ("loo", "rs811", "temporal", "split622")


@dataclass(frozen=True)
class Split:
    """Train / validation / test parts of one dataset under one protocol.

    Attributes:
        protocol: the protocol's name (one of ``PROTOCOLS``).
        train: what models fit on.
        valid: the held-out part for early stopping and every choice made before test.
        test: the held-out part reported; users' history at test time is ``history``.

    The three parts share the catalogue and the id maps; each holds only its own
    interactions (and impressions).
    """

    protocol: str
    train: Dataset
    valid: Dataset
    test: Dataset

    @cached_property
    def history(self) -> Dataset:
        """Train + validation interactions: what a user has done before the test period
        (built once per split, with its cached views: every ``test_query`` reuses it)."""
        return self.train.with_interactions(
            pl.concat([self.train.interactions, self.valid.interactions])
        )

    def test_users(self) -> IntArray:
        """Users with at least one test interaction (warm and cold)."""
        return np.unique(self.test.arrays.user_idx)

    def valid_users(self) -> IntArray:
        return np.unique(self.valid.arrays.user_idx)

    def test_query(self, users: IntArray, k: int) -> Query:
        """Query for test users: history = train + valid, both excluded from results."""
        return self.history.query(users, k)

    def valid_query(self, users: IntArray, k: int) -> Query:
        """Query for validation users: history = train."""
        return self.train.query(users, k)

    def truth(self, part: Dataset, users: IntArray) -> tuple[IntArray, IntArray]:
        """Ragged ground truth (distinct items) of ``users`` in ``part``."""
        mat = part.user_item[users]
        return mat.indptr.astype(np.int64), mat.indices.astype(np.int64)


#: ``loo``: users with fewer interactions than this stay in train only (RecBole, SASRec).
LOO_MIN_LEN = 3


def split(dataset: Dataset, protocol: str, seed: int = 2020, min_len: int = LOO_MIN_LEN) -> Split:
    """Split ``dataset`` by a protocol name from DESIGN.md.

    ``min_len`` (``loo`` only): users with fewer interactions keep them all in train
    (default 3, as RecBole and SASRec's ``data_partition``)."""
    if protocol == "loo":
        part = _leave_last_out(dataset, min_len)
    elif protocol == "rs811":
        part = _random_ratio(dataset, seed)
    elif protocol == "temporal":
        part = _temporal(dataset)
    elif protocol == "split622":
        part = _random_622(dataset, seed)
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    train_rows, valid_rows, test_rows = part
    frame = dataset.interactions
    parts = [frame[np.sort(rows)] for rows in (train_rows, valid_rows, test_rows)]
    train, valid, test = (_with_part(dataset, p, parts) for p in range(3))
    return Split(protocol=protocol, train=train, valid=valid, test=test)


def _with_part(dataset: Dataset, index: int, parts: list[pl.DataFrame]) -> Dataset:
    """``dataset`` restricted to one part, impressions included (no exposure leaks).

    An impression belongs to a held-out part when a held-out event has the same
    ``(user_idx, timestamp)``; all other impressions belong to train."""
    ds = dataset.with_interactions(parts[index])
    if dataset.impressions is None:
        return ds
    keys = ["user_idx", "timestamp"]
    imp = dataset.impressions.with_columns(pl.col(k).cast(parts[0].schema[k]) for k in keys)
    if index == 0:
        held = pl.concat([parts[1].select(keys), parts[2].select(keys)]).unique()
        return ds.replace(impressions=imp.join(held, on=keys, how="anti"))
    own = parts[index].select(keys).unique()
    return ds.replace(impressions=imp.join(own, on=keys, how="semi"))


def _leave_last_out(ds: Dataset, min_len: int) -> tuple[IntArray, IntArray, IntArray]:
    """Per user by time (stable: ties keep file order): last → test, 2nd last → valid.

    Users with fewer than ``min_len`` interactions keep them all in train; with
    ``min_len <= 2`` a user with 2 gives one to test and none to valid."""
    if min_len < 1:
        raise ConfigError(f"loo min_len must be >= 1, got {min_len}")
    order = ds.time_order
    offsets = ragged.offsets_from_lengths(np.bincount(ds.arrays.user_idx, minlength=ds.n_users))
    lens = ragged.lengths(offsets)
    pos_from_end = (lens[ragged.row_ids(offsets)] - 1) - ragged.position_in_row(offsets)
    n = lens[ragged.row_ids(offsets)]
    is_test = (pos_from_end == 0) & (n >= max(min_len, 2))
    is_valid = (pos_from_end == 1) & (n >= max(min_len, 3))
    return order[~is_test & ~is_valid], order[is_valid], order[is_test]


def _random_ratio(ds: Dataset, seed: int) -> tuple[IntArray, IntArray, IntArray]:
    """RecBole-style per-user 80/10/10 after a seeded shuffle, counts by ``rs811_counts``."""
    rng = np.random.default_rng(seed)
    users = ds.arrays.user_idx
    shuffled = rng.permutation(len(users))
    order = shuffled[np.argsort(users[shuffled], kind="stable")]
    offsets = ragged.offsets_from_lengths(np.bincount(users, minlength=ds.n_users))
    n_train, n_valid, _ = (
        c[ragged.row_ids(offsets)] for c in rs811_counts(ragged.lengths(offsets))
    )
    pos = ragged.position_in_row(offsets)
    is_valid = (pos >= n_train) & (pos < n_train + n_valid)
    is_test = pos >= n_train + n_valid
    return order[~is_valid & ~is_test], order[is_valid], order[is_test]


def rs811_counts(n: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Train / valid / test sizes of users with ``n`` interactions, rounded as RecBole (>= 1.0)
    ``Dataset._calcu_split_ids`` does for ratios 0.8/0.1/0.1: valid = test = ``int(0.1·n)``,
    train the rest; then, test first, a part whose exact share ``0.1·n`` lies in ``(0, 1)``
    takes one row from train while train keeps more than one (n=3: 1/1/1, n=2: 1/0/1,
    n=1: 1/0/0, n=9: 7/1/1, n=10: 8/1/1, n=20: 16/2/2)."""
    n = np.asarray(n, dtype=np.int64)
    share = 0.1 * n.astype(np.float64)
    valid = np.floor(share).astype(np.int64)
    test = valid.copy()
    train = n - valid - test
    small = (share > 0) & (share < 1)
    for part in (test, valid):  # RecBole walks the parts from the last one
        bump = small & (train > 1)
        part += bump
        train -= bump
    return train, valid, test


def _temporal(ds: Dataset) -> tuple[IntArray, IntArray, IntArray]:
    """Global time cut: < 80% quantile → history (valid = its last 10% of time), rest → test."""
    ts = ds.arrays.timestamp
    test_cut = float(np.quantile(ts, 0.8))
    valid_cut = float(np.quantile(ts, 0.7))
    rows = np.arange(len(ts), dtype=np.int64)
    is_test = ts >= test_cut
    is_valid = (ts >= valid_cut) & ~is_test
    return rows[~is_test & ~is_valid], rows[is_valid], rows[is_test]


def _random_622(ds: Dataset, seed: int) -> tuple[IntArray, IntArray, IntArray]:
    """KGCN's protocol: a seeded global shuffle of all interactions, 60/20/20."""
    n = len(ds)
    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    n_train, n_valid = round(0.6 * n), round(0.2 * n)
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]
