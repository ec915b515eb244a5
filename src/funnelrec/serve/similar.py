"""Item-to-item neighbours for ``/similar``, from the first source that knows the item:

1. the funnel's item-CF channel (``similar_channel``), asked with a one-item history;
2. cosine co-occurrence over the funnel's interactions (``"cooccurrence"``);
3. content: cosine over the item's tags and category (``"content"``), so an item upserted
   after fitting (no interactions in the model yet) still gets neighbours.

The response says which source answered."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl
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


@dataclass
class Content:
    """Cosine similarity over item tokens (each tag, and ``category:<name>``), from a cached
    item × token matrix (rebuilt when the funnel's dataset object changes)."""

    _cache: tuple[Dataset, sp.csr_matrix] | None = field(default=None, repr=False)

    def neighbours(self, dataset: Dataset, item: int, k: int) -> tuple[IntArray, F32]:
        if self._cache is None or self._cache[0] is not dataset:
            self._cache = (dataset, _token_matrix(dataset.items))
        tokens = self._cache[1]
        if item >= tokens.shape[0] or tokens[item].nnz == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        overlap = np.asarray((tokens @ tokens[item].T).todense(), dtype=np.float64).ravel()
        sizes = np.diff(tokens.indptr).astype(np.float64)
        scores = overlap / np.sqrt(np.maximum(sizes * sizes[item], 1.0))
        scores[item] = 0.0
        top = np.flatnonzero(scores > 0)
        top = top[np.argsort(-scores[top], kind="stable")[:k]]
        return top.astype(np.int64), scores[top].astype(np.float32)


def _token_matrix(items: pl.DataFrame) -> sp.csr_matrix:
    """``[n_items, n_tokens]`` 0/1: an item's tags and its ``category:<name>`` token."""
    parts = []
    if "tags" in items.columns and isinstance(items.schema["tags"], pl.List):
        parts.append(items.select("item_idx", token=pl.col("tags")).explode("token"))
    if "category" in items.columns:
        token = pl.lit("category:") + pl.col("category").cast(pl.Utf8)
        parts.append(items.select("item_idx", token=token))
    n_items = items.height
    if not parts:
        return sp.csr_matrix((n_items, 0), dtype=np.float32)
    pairs = pl.concat(parts).drop_nulls().unique()
    codes = pairs["token"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    rows = pairs["item_idx"].to_numpy()
    data = np.ones(len(rows), dtype=np.float32)
    n_tokens = int(codes.max(initial=-1)) + 1
    return sp.csr_matrix((data, (rows, codes)), shape=(n_items, n_tokens))


def similar_items(
    served: ServedFunnel,
    cooc: Cooccurrence,
    content: Content,
    item: int,
    k: int,
    channel_name: str,
    now: float,
) -> tuple[str, IntArray, F32]:
    """``(source, items, scores)``: up to ``k`` neighbours of dense item ``item`` from the
    first source that has any (item-CF channel, co-occurrence, content)."""
    for cid, channel in served.funnel.channels.items():
        if channel.registered_name == channel_name:
            query = Query.from_lists([-1], [[item]], k, exclude=[[item]], now=now)
            found = channel.retrieve(query, k)
            if len(found.item_idx):
                return cid, found.item_idx, found.scores
    items, scores = cooc.neighbours(served.dataset, item, k)
    if len(items):
        return "cooccurrence", items, scores
    items, scores = content.neighbours(served.dataset, item, k)
    return "content", items, scores
