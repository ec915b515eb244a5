"""Item-to-item neighbours for ``/similar``: the funnel's item-CF channel when it has one
(asked with a one-item history), else cosine co-occurrence over the funnel's interactions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec.data.dataset import Dataset
from funnelrec.ragged import IntArray
from funnelrec.serve.model import ServedFunnel
from funnelrec.types import Query

F32 = npt.NDArray[np.float32]


@dataclass
class Cooccurrence:
    """Cosine co-occurrence ``|U_i ∩ U_j| / sqrt(|U_i| |U_j|)``, computed per request from a
    cached item→user CSC view (rebuilt when the funnel's dataset object changes)."""

    _cache: tuple[Dataset, sp.csc_matrix] | None = field(default=None, repr=False)

    def neighbours(self, dataset: Dataset, item: int, k: int) -> tuple[IntArray, F32]:
        if self._cache is None or self._cache[0] is not dataset:
            self._cache = (dataset, dataset.user_item.tocsc())
        by_item = self._cache[1]
        if item >= by_item.shape[1]:  # upserted after fitting: no interactions yet
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        users = by_item.indices[by_item.indptr[item] : by_item.indptr[item + 1]]
        counts = np.asarray(dataset.user_item[users].sum(axis=0), dtype=np.float64).ravel()
        degree = np.diff(by_item.indptr).astype(np.float64)
        scores = counts / np.sqrt(np.maximum(degree * degree[item], 1.0))
        scores[item] = 0.0
        top = np.flatnonzero(scores > 0)
        top = top[np.argsort(-scores[top], kind="stable")[:k]]
        return top.astype(np.int64), scores[top].astype(np.float32)


def similar_items(
    served: ServedFunnel, cooc: Cooccurrence, item: int, k: int, channel_name: str, now: float
) -> tuple[str, IntArray, F32]:
    """``(source, items, scores)``: up to ``k`` neighbours of dense item ``item``."""
    for cid, channel in served.funnel.channels.items():
        if channel.registered_name == channel_name:
            query = Query.from_lists([-1], [[item]], k, exclude=[[item]], now=now)
            found = channel.retrieve(query, k)
            return cid, found.item_idx, found.scores
    items, scores = cooc.neighbours(served.dataset, item, k)
    return "cooccurrence", items, scores
