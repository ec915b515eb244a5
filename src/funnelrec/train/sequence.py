"""Next-item training for sequence encoders: batches of sequences and the loss closure.

Two sample layouts (see ``funnelrec.models.sequence.base``), both left-padded ``item + 1``:

* ``causal``: each user's time-ordered items are cut into windows of ``max_len + 1`` items
  aligned to the sequence end; ``seq`` ``[B, L]`` is a window without its last item and
  ``target`` ``[B, L]`` the next item at every position (``-1`` on padding), so one forward
  pass trains every position (GRU4Rec, SASRec);
* ``last``: one sample per target position, ``seq`` = up to ``max_len`` items before it and
  ``target`` ``[B]`` (Caser, MIND, ComiRec).

``NextItemLoss`` is softmax cross-entropy over all items (``full``) or over the batch's
distinct targets plus ``n_extra`` shared negatives with log-Q correction (``sampled``).
Multi-interest outputs ``[N, K, d]`` are trained through the interest closest to the target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.ragged import IntArray
from funnelrec.train.losses import (
    Precision,
    check_precision,
    mixture_log_q,
    sampled_softmax_loss,
    shared_softmax_loss,
)
from funnelrec.train.negatives import NegativeSampler

Layout = Literal["causal", "last"]


def causal_windows(seq_offsets: IntArray, max_len: int) -> tuple[IntArray, IntArray]:
    """``(start, length)`` of the training windows (``length`` = items incl. the last target).

    Windows of ``max_len + 1`` items end at each user's last item and step back by
    ``max_len``, so every item but each user's first is a target exactly once.
    """
    lens = np.diff(seq_offsets)
    n_win = np.maximum(np.ceil((lens - 1) / max_len).astype(np.int64), 0)
    user = np.repeat(np.arange(len(lens)), n_win)
    k = ragged.position_in_row(ragged.offsets_from_lengths(n_win))
    end = seq_offsets[user + 1] - k * max_len  # exclusive
    start = np.maximum(end - max_len - 1, seq_offsets[user])
    return start.astype(np.int64), (end - start).astype(np.int64)


def _gather(seq_items: IntArray, start: IntArray, length: IntArray, width: int) -> IntArray:
    """``[n, width]`` of ``item + 1`` for spans ``[start, start+length)``, right-aligned."""
    col = np.arange(width)
    pos = start[:, None] + length[:, None] - width + col[None, :]
    valid = col[None, :] >= width - length[:, None]
    return np.where(valid, seq_items[np.clip(pos, 0, len(seq_items) - 1)] + 1, 0)


@dataclass
class SequenceBatches:
    """``batches(epoch, rng)`` for ``train.loop.fit`` over time-ordered user sequences.

    Attributes:
        seq_offsets, seq_items: ``[n_users+1]`` / ``[N]`` every user's items, oldest first.
        batch_size: samples (windows or targets) per batch.
        max_len: history length fed to the model.
        layout: ``causal`` or ``last``.
        extra_sampler, n_extra: negatives shared by the batch (``extra`` ``[n_extra]``).
    """

    seq_offsets: IntArray
    seq_items: IntArray
    batch_size: int
    max_len: int
    layout: Layout = "causal"
    extra_sampler: NegativeSampler | None = None
    n_extra: int = 0

    def __post_init__(self) -> None:
        if self.layout == "causal":
            self._start, self._len = causal_windows(self.seq_offsets, self.max_len)
        else:
            pos = ragged.position_in_row(self.seq_offsets)
            target = np.flatnonzero(pos > 0).astype(np.int64)
            hist = np.minimum(pos[target], self.max_len)
            self._start, self._len = target - hist, hist + 1

    def __len__(self) -> int:
        return len(self._start)

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        """Batches of samples of similar length (random within a length), in random order:
        padding (and so compute) stays small when most sequences are short."""
        order = np.lexsort((rng.random(len(self._start)), self._len))
        starts = np.arange(0, len(order), self.batch_size)
        for lo in rng.permutation(starts):
            yield self.batch(order[lo : lo + self.batch_size], rng)

    def batch(self, rows: IntArray, rng: np.random.Generator) -> dict[str, Tensor]:
        start, length = self._start[rows], self._len[rows]
        width = int(length.max())
        span = _gather(self.seq_items, start, length, width)  # [n, width], last col = target
        if self.layout == "causal":
            seq, target = span[:, :-1], span[:, 1:] - 1
            target = np.where(seq > 0, target, -1)
        else:
            seq, target = span[:, :-1], span[:, -1] - 1
        out = {"seq": torch.from_numpy(seq), "target": torch.from_numpy(target)}
        if self.extra_sampler is not None and self.n_extra > 0:
            out["extra"] = torch.from_numpy(self.extra_sampler.draw(self.n_extra, rng))
        return out


class NextItemLoss:
    """Loss closure ``(model, batch) -> scalar`` for ``SequenceEncoder`` models.

    Args:
        kind: ``full`` (softmax over all ``n_items``) or ``sampled`` (batch targets + extra).
        n_items: catalogue size.
        batch_prob: ``[n_items]`` probability of an item being a target (log-Q of ``sampled``).
        extra_prob: ``[n_items]`` distribution of the shared extra negatives.
        temperature: logit divisor.
        in_batch: ``sampled`` only: the first ``in_batch`` targets (plus ``extra``) are the
            shared negatives of every target (``train.losses.shared_softmax_loss``; ``None``:
            all the batch's distinct targets).
        precision: ``sampled`` only: input dtype of the softmax's ``[B, C]`` products
            (``train.losses.PRECISIONS``).
    """

    def __init__(
        self,
        kind: Literal["full", "sampled"],
        n_items: int,
        *,
        batch_prob: Tensor | None = None,
        extra_prob: Tensor | None = None,
        temperature: float = 1.0,
        in_batch: int | None = None,
        precision: Precision = "float32",
    ) -> None:
        self.in_batch = in_batch
        check_precision(precision)
        self.precision = precision
        if kind not in ("full", "sampled"):
            raise ValueError(f"unknown next-item loss {kind!r}; known: full, sampled")
        self.kind, self.n_items, self.temperature = kind, n_items, temperature
        self.batch_prob, self.extra_prob = batch_prob, extra_prob

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        from funnelrec.models.sequence.base import SequenceEncoder

        if not isinstance(model, SequenceEncoder):
            raise TypeError(f"NextItemLoss needs a SequenceEncoder, got {type(model).__name__}")
        user, target = model.train_vectors(batch)
        if user.dim() == 3:  # multi-interest: the interest closest to the target learns
            tgt = model.item_vectors(target)
            best = (user * tgt.unsqueeze(1)).sum(-1).argmax(1)
            user = user[torch.arange(len(user), device=user.device), best]
        if self.kind == "full":
            items = model.item_vectors(torch.arange(self.n_items, device=user.device))
            return F.cross_entropy(user @ items.T / self.temperature, target)
        extra = batch.get("extra")
        if self.in_batch is not None and self.in_batch < len(target):
            return self._shared(model, user, target, extra)
        cand = target if extra is None else torch.cat([target, extra])
        cand, inverse = torch.unique(cand, return_inverse=True)
        log_q = None
        if self.batch_prob is not None:
            n_extra = 0 if extra is None else len(extra)
            log_q = mixture_log_q(cand, self.batch_prob, len(user), self.extra_prob, n_extra)
        items = model.item_vectors(cand)
        return sampled_softmax_loss(
            user, items, cand, log_q, self.temperature, inverse[: len(user)], self.precision
        )

    def _shared(
        self, model: nn.Module, user: Tensor, target: Tensor, extra: Tensor | None
    ) -> Tensor:
        """Each target against the first ``in_batch`` targets and ``extra``."""
        assert self.in_batch is not None
        head = target[: self.in_batch]
        cand = torch.unique(head if extra is None else torch.cat([head, extra]))
        ids = torch.cat([target, cand])
        items = model.item_vectors(ids)  # type: ignore[operator]
        q_pos = q_cand = None
        if self.batch_prob is not None:
            n_extra = 0 if extra is None else len(extra)
            log_q = mixture_log_q(ids, self.batch_prob, len(head), self.extra_prob, n_extra)
            q_pos, q_cand = log_q[: len(target)], log_q[len(target) :]
        n = len(target)
        return shared_softmax_loss(
            user, items[:n], target, items[n:], cand, q_pos, q_cand, self.temperature,
            self.precision,
        )  # fmt: skip
