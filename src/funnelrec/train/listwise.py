"""Whole-list training for the CTR rankers' ``listwise`` loss.

``ListBatches`` yields mini-batches made of whole query lists (every candidate of a list, the
lists in a shuffled order, about ``batch_size`` rows per batch), each row tagged with its
list's position in the batch (``group``: ``0..L-1``), so the loss
(``losses.segment_listwise_softmax``) takes one softmax per list with segment operations,
no padding and no Python loop over lists. ``list_ndcg`` is the validation metric: mean
NDCG@k over the lists that have a positive.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from funnelrec import ragged
from funnelrec.batch import Batch
from funnelrec.ragged import FloatArray, IntArray


class ListBatches:
    """Shuffled mini-batches of whole lists (``data.group``: list of each row; lists without
    a positive label are left out, they carry no listwise signal)."""

    def __init__(self, data: Batch, batch_size: int) -> None:
        if data.label is None or data.group is None:
            raise ValueError("the listwise loss needs labels and list ids (group)")
        group = data.group.numpy()
        self.order = np.argsort(group, kind="stable").astype(np.int64)
        _, first, inverse, counts = np.unique(
            group[self.order], return_index=True, return_inverse=True, return_counts=True
        )
        positive = np.bincount(inverse, weights=(data.label.numpy()[self.order] > 0) * 1.0) > 0
        if not positive.any():
            raise ValueError("the listwise loss needs lists with at least one positive")
        self.starts, self.lens = first[positive], counts[positive]
        self.data, self.batch_size = data, batch_size

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        perm = rng.permutation(len(self.lens))
        lens = self.lens[perm]
        batch = (np.cumsum(lens) - lens) // self.batch_size  # batch of each list, by its start
        for chunk in np.split(perm, np.flatnonzero(np.diff(batch)) + 1):
            starts, n = self.starts[chunk], self.lens[chunk]
            offsets = ragged.offsets_from_lengths(n)
            rows = self.order[np.repeat(starts, n) + ragged.position_in_row(offsets)]
            out = self.data.take(torch.from_numpy(rows)).as_dict()
            out["group"] = torch.from_numpy(ragged.row_ids(offsets))
            yield out


def list_ndcg(labels: FloatArray, scores: FloatArray, group: IntArray, k: int = 10) -> float:
    """Mean NDCG@``k`` (linear gains) of the lists (``group`` ids, any order) that have a
    positive; ``0.0`` when none has."""
    _, g = np.unique(group, return_inverse=True)
    n_lists = int(g.max()) + 1 if len(g) else 0
    ideal = _dcg(labels, labels, g, n_lists, k)
    has = ideal > 0
    if not has.any():
        return 0.0
    return float((_dcg(labels, scores, g, n_lists, k)[has] / ideal[has]).mean())


def _dcg(
    labels: FloatArray, scores: FloatArray, g: IntArray, n_lists: int, k: int
) -> npt.NDArray[np.float64]:
    """``[n_lists]`` DCG@k of ``labels`` ordered by ``scores`` within each list."""
    order = np.lexsort((-np.asarray(scores, dtype=np.float64), g))
    offsets = ragged.offsets_from_lengths(np.bincount(g, minlength=n_lists))
    rank = ragged.position_in_row(offsets)
    gain = np.where(rank < k, labels[order] / np.log2(rank + 2.0), 0.0)
    return np.bincount(g[order], weights=gain, minlength=n_lists).astype(np.float64)
