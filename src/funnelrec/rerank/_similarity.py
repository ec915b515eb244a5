"""Item-to-item similarity for the diversity and dedup re-rankers (MMR, DPP, near-dedup).

An ``ItemSimilarity`` holds one item description fitted once: unit vectors ``[n_items, d]``
(from an item-table vector column or a fitted recall channel's item embeddings) or a tag /
category CSR (binary for Jaccard, row-normalised for cosine). ``pairwise(items)`` gives the
similarities ``[b, N, N]`` of each padded row of candidates in one batched pass; items
outside the fitted catalogue (or without a description) are similar to nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from funnelrec import needs
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError
from funnelrec.ragged import IntArray
from funnelrec.rerank._items import Padded, item_column

F32 = npt.NDArray[np.float32]
SIM_BUDGET = 1 << 22  # float32 entries of [b, N, N] per chunk (16 MiB)


def rows_per_chunk(width: int, dim: int) -> int:
    """Queries per chunk so that ``[b, width, max(width, dim)]`` stays within ``SIM_BUDGET``."""
    return max(1, SIM_BUDGET // (width * max(width, dim)))


SetSimilarity = Literal["jaccard", "cosine"]


def chunks(view: Padded, dim: int) -> Iterator[tuple[slice, Padded]]:
    """Row slices of a padded batch and their ``Padded`` views, sized by ``rows_per_chunk``
    (so each chunk's ``[b, N, N]`` similarities stay within ``SIM_BUDGET``)."""
    step = rows_per_chunk(view.width, dim)
    for lo in range(0, len(view.items), step):
        part = slice(lo, lo + step)
        yield part, Padded(view.flat[part], view.items[part], view.valid[part])


def item_description(
    dataset: Dataset,
    stage: str,
    *,
    vector_column: str | None = None,
    channel: str | None = None,
    channels: Mapping[str, Any] | None = None,
    features: Literal["tags", "category"] | None = "tags",
    similarity: SetSimilarity = "cosine",
) -> tuple[F32, sp.csr_matrix]:
    """The fitted item description of a similarity re-ranker: unit vectors ``[n_items, d]``
    (from ``vector_column``, else the recall ``channel``'s item embeddings) with an empty
    ``[n_items, 0]`` CSR, or empty ``[n_items, 0]`` vectors with the ``features`` CSR
    ``[n_items, T]`` (binary for Jaccard, row-normalised for cosine)."""
    n = dataset.n_items
    vectors = np.zeros((n, 0), dtype=np.float32)
    feats = sp.csr_matrix((n, 0), dtype=np.float32)
    if vector_column is not None:
        vectors = column_vectors(dataset, vector_column, stage)
    elif channel is not None:
        vectors = channel_vectors(channels or {}, channel, n, stage)
    else:
        assert features is not None
        feats = tag_features(dataset, features, similarity)
    return vectors, feats


def tag_features(
    dataset: Dataset, features: Literal["tags", "category"], similarity: SetSimilarity
) -> sp.csr_matrix:
    """``[n_items, T]`` CSR of item tags (or one-hot categories); rows unit-normalised for
    cosine, binary for Jaccard."""
    feats = dataset.item_tags[0] if features == "tags" else one_hot(dataset)
    feats = sp.csr_matrix(feats, dtype=np.float32)
    if similarity == "cosine":
        norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
        feats = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ feats)
    return feats


def column_vectors(dataset: Dataset, column: str, stage: str) -> F32:
    """Unit vectors ``[n_items, d]`` of an item-table column of fixed-length numeric lists."""
    return unit_vectors(item_column(dataset, column, stage))


def channel_vectors(channels: Mapping[str, Any], name: str, n_items: int, stage: str) -> F32:
    """Unit item embeddings ``[n_items, d]`` of the fitted recall channel ``name``.

    The channel must be an embedding channel (``mf``, ``two_tower``, ``youtube_dnn``): one
    whose fitted ``model_`` has ``item_vectors(ids)``.

    Raises:
        ConfigError: naming the channel when it is absent or has no item embeddings.
    """
    if name not in channels:
        known = ", ".join(channels) or "none"
        raise ConfigError(f"rerank {stage}: recall channel {name!r} not found; channels: {known}")
    model = getattr(channels[name], "model_", None)
    if model is None or not hasattr(model, "item_vectors"):
        raise ConfigError(
            f"rerank {stage}: recall channel {name!r} has no item embeddings "
            "(use an embedding channel such as mf or two_tower)"
        )
    import torch  # only when a channel is the source: keeps the rule re-rankers light

    with torch.no_grad():
        vecs = model.item_vectors(torch.arange(n_items)).detach().cpu().numpy()
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    unit: F32 = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def pairwise_vectors(vectors: F32, items: IntArray) -> F32:
    """Cosine similarities ``[b, N, N]`` of unit ``vectors`` for padded ``items[b, N]``."""
    known = (items >= 0) & (items < len(vectors))
    vecs = vectors[np.where(known, items, 0)] * known[..., None]
    dots: F32 = np.matmul(vecs, vecs.transpose(0, 2, 1)).astype(np.float32)
    return dots


def pairwise_sets(
    features: sp.csr_matrix, items: IntArray, similarity: SetSimilarity | None
) -> F32:
    """Similarities ``[b, N, N]`` of tag rows for padded ``items[b, N]``: ``jaccard`` (on
    binary rows), else the dot product (cosine on unit rows, overlap count on binary rows).

    One block-diagonal sparse product: row ``b*N + i`` of the shifted matrix only shares
    columns with rows of the same query ``b``.
    """
    b, n = items.shape
    known = (items >= 0) & (items < features.shape[0])
    safe = np.where(known, items, 0)
    feats = sp.csr_matrix(sp.diags(known.ravel().astype(np.float32)) @ features[safe.ravel()])
    n_feat = feats.shape[1]
    row_of_entry = np.repeat(np.arange(b * n) // n, np.diff(feats.indptr))
    shifted = sp.csr_matrix(
        (feats.data, feats.indices + row_of_entry * n_feat, feats.indptr),
        shape=(b * n, b * n_feat),
    )
    gram = (shifted @ shifted.T).tocoo()
    values = gram.data
    if similarity == "jaccard":
        sizes = np.asarray(feats.sum(axis=1)).ravel()
        values = values / np.maximum(sizes[gram.row] + sizes[gram.col] - values, 1e-12)
    sims = np.zeros(b * n * n, dtype=np.float32)
    sims[gram.row.astype(np.int64) * n + gram.col % n] = values  # row b*n+i, col b*n+j
    return sims.reshape(b, n, n)


def one_hot(dataset: Dataset) -> sp.csr_matrix:
    """``[n_items, n_categories]`` binary CSR of item categories (no entry when missing)."""
    codes, names = dataset.item_categories
    rows = np.flatnonzero(codes >= 0)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, codes[rows])), shape=(len(codes), len(names)))


def unit_vectors(values: pl.Series) -> F32:
    """Fixed-length list column → unit-norm ``[n, d]`` float32 (nulls → zero vectors)."""
    try:
        values = values.cast(pl.List(pl.Float32))
    except pl.exceptions.PolarsError:
        raise DataError(
            f"vector column {values.name!r} ({values.dtype}) is not a list of numbers"
        ) from None
    present = values.is_not_null().to_numpy()
    lens = values.list.len().filter(values.is_not_null()).unique().to_list()
    if len(lens) > 1:
        raise DataError(f"vector column {values.name!r} has vectors of lengths {sorted(lens)}")
    dim = int(lens[0]) if lens else 0
    out = np.zeros((len(values), dim), dtype=np.float32)
    flat = values.filter(values.is_not_null()).explode().fill_null(0.0).to_numpy()
    out[present] = flat.reshape(-1, dim) if dim else out[present]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    unit: F32 = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def similarity_needs(vector_column: str | None, features: str | None) -> tuple[needs.Need, ...]:
    """Data needs of a similarity source: the vector column, or item tags/category."""
    if vector_column is not None:
        return (needs.item_columns((vector_column,), "item vectors", "vector_column"),)
    if features is None:  # similarity from a recall channel
        return ()
    columns = ("tags", "category") if features == "tags" else ("category",)
    return (needs.item_columns(columns, "item similarity", "features"),)


def description_of(
    params: Any, dataset: Dataset, stage: str, ctx: FitContext | None
) -> tuple[F32, sp.csr_matrix]:
    """``item_description`` from a re-ranker's params (``vector_column``, ``channel``,
    ``features``) and the funnel's fitted channels (``ctx``; none outside a funnel)."""
    return item_description(
        dataset, stage, vector_column=params.vector_column, channel=params.channel,
        channels=None if ctx is None else ctx.channels, features=params.features,
    )  # fmt: skip


class SimilarityNeeds:
    """Mixin of the similarity re-rankers (MMR, DPP, near-dedup): ``requires`` is the
    ``vector_column``, or the item tags/category the similarity is computed from."""

    @classmethod
    def requires(cls, params: Any) -> tuple[needs.Need, ...]:
        """The ``vector_column``, or the item tags/category similarity is computed from."""
        return similarity_needs(params.vector_column, params.features)
