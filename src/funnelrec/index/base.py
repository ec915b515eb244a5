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
    """Maximum-inner-product search; add ids with vectors, search batches of queries."""

    is_exact: ClassVar[bool] = False

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim

    @abstractmethod
    def add(self, ids: IntArray, vectors: FloatMatrix) -> None:
        """Add (or, for ids already present, replace) vectors ``[n, dim]`` under ``ids``."""

    @abstractmethod
    def search(
        self,
        queries: FloatMatrix,
        k: int,
        exclude_offsets: IntArray | None = None,
        exclude_ids: IntArray | None = None,
    ) -> tuple[IntArray, FloatMatrix]:
        """Top ``k`` ids and scores per query ``[B, k]`` (``-1`` / ``-inf`` padding),
        never returning an id listed in that query's ragged exclusions."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> VectorIndex: ...
