"""Training batches from interaction logs: (user, item) pairs with histories and negatives.

A batch is a ``{name: tensor}`` mapping (see ``funnelrec.train.loop.Batch``):

* ``user`` ``[B]`` and ``item`` ``[B]``: the positive pairs;
* ``hist_items`` ``[H]`` + ``hist_offsets`` ``[B]`` (``EmbeddingBag`` start offsets): the user's
  history at that pair (``prefix``: the items before it in time; ``others``: the user's latest
  items except the target), at most ``max_history`` items;
* ``user_feats`` ``[B, F]``: categorical user-attribute codes (when given);
* ``neg`` ``[B, N]``: per-pair negatives; ``extra`` ``[M]``: negatives shared by the batch.

Head-item downsampling drops positives of very frequent items each epoch with word2vec's rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from funnelrec import ragged
from funnelrec.ragged import IntArray
from funnelrec.train.negatives import NegativeSampler

HistoryMode = Literal["prefix", "others"]
F64Array = npt.NDArray[np.float64]


def frequency_keep_prob(popularity: npt.ArrayLike, threshold: float | None) -> F64Array:
    """Word2vec subsampling: keep an event of item ``i`` with ``min(1, √(t/f) + t/f)``.

    ``f`` is the item's share of all events and ``t`` the ``threshold`` (``None``: keep all).
    """
    pop = np.asarray(popularity, dtype=np.float64)
    if threshold is None or pop.sum() <= 0:
        return np.ones(len(pop))
    freq = np.maximum(pop / pop.sum(), 1e-12)
    ratio = threshold / freq
    return np.asarray(np.minimum(1.0, np.sqrt(ratio) + ratio), dtype=np.float64)


def history_index(
    seq_offsets: IntArray, users: IntArray, positions: IntArray, max_len: int, mode: HistoryMode
) -> tuple[IntArray, IntArray]:
    """Ragged positions (into the flat sequence array) of each pair's history.

    Args:
        seq_offsets: ``[n_users+1]`` offsets of the time-ordered sequences.
        users: ``[B]`` user of each pair; ``positions``: ``[B]`` index of the target item in
            its user's sequence.
        max_len: most recent items kept.
        mode: ``prefix`` (items before the target) or ``others`` (latest items but the target).

    Returns:
        ``(offsets [B+1], flat [H])``.
    """
    starts = seq_offsets[users]
    if mode == "prefix":
        lens = np.minimum(positions, max_len)
        offsets = ragged.offsets_from_lengths(lens)
        return offsets, np.repeat(starts + positions - lens, lens) + ragged.position_in_row(offsets)
    n = seq_offsets[users + 1] - starts
    win = np.minimum(n, max_len + 1)
    w_off = ragged.offsets_from_lengths(win)
    flat = np.repeat(starts + n - win, win) + ragged.position_in_row(w_off)
    keep = flat != np.repeat(starts + positions, win)
    rows, flat = ragged.row_ids(w_off)[keep], flat[keep]
    count = np.bincount(rows, minlength=len(users))
    offsets = ragged.offsets_from_lengths(count)
    recent = ragged.position_in_row(offsets) >= (count - max_len)[rows]
    return ragged.offsets_from_lengths(np.minimum(count, max_len)), flat[recent]


@dataclass
class PairBatches:
    """Iterable of shuffled training batches over time-ordered ``(user, item)`` sequences.

    Called as ``batches(epoch, rng)`` by ``train.loop.fit``.

    Attributes:
        seq_offsets, seq_items: ``[n_users+1]`` / ``[N]`` every user's items, oldest first.
        batch_size: pairs per batch.
        keep_prob: ``[n_items]`` per-item keep probability (head downsampling) or ``None``.
        max_history: history length fed to the model (``0``: no history in the batch).
        history_mode: ``prefix`` or ``others``.
        user_feats: ``[n_users, F]`` user-attribute codes or ``None``.
        sampler, n_neg: per-pair negatives ``[B, n_neg]`` (``n_neg = 0``: none).
        extra_sampler, n_extra: negatives shared by the batch ``[n_extra]``.
    """

    seq_offsets: IntArray
    seq_items: IntArray
    batch_size: int
    keep_prob: F64Array | None = None
    max_history: int = 0
    history_mode: HistoryMode = "prefix"
    user_feats: IntArray | None = None
    sampler: NegativeSampler | None = None
    n_neg: int = 0
    extra_sampler: NegativeSampler | None = None
    n_extra: int = 0

    def __post_init__(self) -> None:
        self._users = ragged.row_ids(self.seq_offsets)
        self._positions = ragged.position_in_row(self.seq_offsets)

    def __len__(self) -> int:
        return len(self.seq_items)

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        rows = rng.permutation(len(self.seq_items))
        if self.keep_prob is not None:
            rows = rows[rng.random(len(rows)) < self.keep_prob[self.seq_items[rows]]]
        for lo in range(0, len(rows), self.batch_size):
            yield self.batch(rows[lo : lo + self.batch_size], rng)

    def batch(self, rows: IntArray, rng: np.random.Generator) -> dict[str, Tensor]:
        """The batch of the given flat sequence positions."""
        users = self._users[rows]
        out = {"user": torch.from_numpy(users), "item": torch.from_numpy(self.seq_items[rows])}
        if self.max_history > 0:
            h_off, flat = history_index(
                self.seq_offsets, users, self._positions[rows], self.max_history, self.history_mode
            )
            out["hist_items"] = torch.from_numpy(self.seq_items[flat])
            out["hist_offsets"] = torch.from_numpy(h_off[:-1].copy())
        if self.user_feats is not None:
            out["user_feats"] = torch.from_numpy(self.user_feats[users])
        if self.sampler is not None and self.n_neg > 0:
            out["neg"] = torch.from_numpy(self.sampler.sample(users, self.n_neg, rng))
        if self.extra_sampler is not None and self.n_extra > 0:
            out["extra"] = torch.from_numpy(self.extra_sampler.draw(self.n_extra, rng))
        return out
