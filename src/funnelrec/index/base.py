"""``VectorIndex``: nearest-neighbour search over item vectors (inner product).

Implementations: ``ExactIndex`` (batched matmul + top-k, the reference) and Faiss indexes
(HNSW, IVF-Flat) behind the same interface. Vectors are identified by dense item ids given
at ``add``; ``search`` can exclude ids per query (already-seen items).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from funnelrec.ragged import IntArray

FloatMatrix = npt.NDArray[np.float32]


class VectorIndex(ABC):
    """Maximum-inner-product search; add ids with vectors, search batches of queries.

    Args:
        dim: vector size ``d`` (``>= 1``).

    Attributes:
        is_exact: ``True`` when ``search`` returns the exact top ``k`` (the reference).
    """

    is_exact: ClassVar[bool] = False

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim

    @abstractmethod
    def add(self, ids: IntArray, vectors: FloatMatrix) -> None:
        """Add (or, for ids already present, replace) vectors ``[n, dim]`` under ``ids``."""

    def search(
        self,
        queries: FloatMatrix,
        k: int,
        exclude_offsets: IntArray | None = None,
        exclude_ids: IntArray | None = None,
    ) -> tuple[IntArray, FloatMatrix]:
        """Top ``k`` ids and scores per query, never returning an id listed in that query's
        ragged exclusions (template method: checks and padding here, the search in
        ``_search``).

        Args:
            queries: ``[B, dim]`` query vectors.
            k: Results per query; missing results are ``-1`` / ``-inf``.
            exclude_offsets: ``[B+1]`` ragged offsets into ``exclude_ids``.
            exclude_ids: ``[E]`` ids never returned for their query.

        Returns:
            ids ``[B, k]`` int64 and scores ``[B, k]`` float32, best first.
        """
        q, offsets, excl = check_search(queries, k, self.dim, exclude_offsets, exclude_ids)
        out_ids = np.full((len(q), k), -1, dtype=np.int64)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        if k == 0 or len(self) == 0 or len(q) == 0:
            return out_ids, out_scores
        self._search(q, offsets, excl, (out_ids, out_scores))
        return out_ids, out_scores

    @abstractmethod
    def _search(
        self, q: FloatMatrix, offsets: IntArray, excl: IntArray, out: tuple[IntArray, FloatMatrix]
    ) -> None:
        """Fill ``out`` = (ids, scores) ``[B, k]`` (pre-filled ``-1`` / ``-inf``) for checked
        queries ``q`` ``[B, dim]`` (``k >= 1``, ``B >= 1``, the index not empty) and their
        ragged exclusions ``offsets`` ``[B+1]`` / ``excl`` ``[E]``."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of vectors in the index."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the index (its ids, vectors or native index, and settings) to ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> VectorIndex:
        """The index saved in ``directory`` by ``save``."""


def check_add(ids: npt.ArrayLike, vectors: npt.ArrayLike, dim: int) -> tuple[IntArray, FloatMatrix]:
    """Validate ``add`` inputs; returns ids ``[n]`` int64 and C-contiguous float32 ``[n, dim]``.

    Raises:
        ValueError: naming the problem (dtype, shape, dim, length mismatch, negative or
            duplicate ids, non-finite values).
    """
    id_arr = np.asarray(ids)
    if id_arr.ndim != 1 or not (id_arr.size == 0 or np.issubdtype(id_arr.dtype, np.integer)):
        raise ValueError(
            f"ids must be a 1-D integer array, got shape {id_arr.shape} {id_arr.dtype}"
        )
    vec = np.ascontiguousarray(vectors, dtype=np.float32)
    if vec.ndim != 2 or vec.shape[1] != dim:
        raise ValueError(f"vectors must have shape [n, {dim}], got {vec.shape}")
    if len(id_arr) != len(vec):
        raise ValueError(f"ids has {len(id_arr)} entries but vectors has {len(vec)} rows")
    id_arr = id_arr.astype(np.int64, copy=False)
    if len(id_arr) and id_arr.min() < 0:
        raise ValueError(f"ids must be non-negative, got {int(id_arr.min())}")
    if len(np.unique(id_arr)) != len(id_arr):
        raise ValueError("ids must be unique within one add call")
    if not np.isfinite(vec).all():
        raise ValueError("vectors contain NaN or infinite values")
    return id_arr, vec


def check_search(
    queries: npt.ArrayLike,
    k: int,
    dim: int,
    exclude_offsets: npt.ArrayLike | None,
    exclude_ids: npt.ArrayLike | None,
) -> tuple[FloatMatrix, IntArray, IntArray]:
    """Validate ``search`` inputs.

    Returns:
        Queries ``[B, dim]`` float32, exclusion offsets ``[B+1]`` and ids ``[E]`` (empty
        exclusions when none were given).

    Raises:
        ValueError: naming the problem (query shape, negative ``k``, malformed exclusions).
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape [B, {dim}], got {q.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if (exclude_offsets is None) != (exclude_ids is None):
        raise ValueError("exclude_offsets and exclude_ids must be given together")
    if exclude_offsets is None or exclude_ids is None:
        return q, np.zeros(len(q) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    offsets = np.asarray(exclude_offsets, dtype=np.int64)
    excl = np.asarray(exclude_ids, dtype=np.int64)
    if offsets.shape != (len(q) + 1,):
        raise ValueError(f"exclude_offsets must have shape [{len(q) + 1}], got {offsets.shape}")
    if offsets[0] != 0 or offsets[-1] != len(excl) or (np.diff(offsets) < 0).any():
        raise ValueError(
            f"exclude_offsets must rise from 0 to len(exclude_ids)={len(excl)}, "
            f"got {offsets[0]}..{offsets[-1]}"
        )
    if len(excl) and excl.min() < 0:
        raise ValueError(f"exclude_ids must be non-negative, got {int(excl.min())}")
    return q, offsets, excl


class IdPositions:
    """Dense map from non-negative ids to int64 positions (``-1`` = absent).

    Ids are dense item ids, so a flat array indexed by id is the fastest vectorised map;
    memory is 8 bytes per id up to the largest id seen.
    """

    def __init__(self) -> None:
        self.table: IntArray = np.full(0, -1, dtype=np.int64)

    def get(self, ids: IntArray) -> IntArray:
        """Positions ``[n]`` of ``ids`` (``-1`` for ids never set)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        inside = ids < len(self.table)
        out[inside] = self.table[ids[inside]]
        return out

    def set(self, ids: IntArray, positions: IntArray) -> None:
        """Map ``ids[i] -> positions[i]``, growing the table geometrically as needed."""
        if len(ids) == 0:
            return
        need = int(ids.max()) + 1
        if need > len(self.table):
            grown = np.full(max(need, 2 * len(self.table)), -1, dtype=np.int64)
            grown[: len(self.table)] = self.table
            self.table = grown
        self.table[ids] = positions
