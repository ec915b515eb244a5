"""Optional dimensionality reduction of content vectors: PCA (scikit-learn) fitted once,
kept as plain arrays so it is saved with the stage and applied to new items alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from funnelrec.content.registry import F32Matrix
from funnelrec.errors import ConfigError


@dataclass(frozen=True)
class PCAReducer:
    """``transform(x) = (x - mean) @ components.T`` (``[n, d]`` → ``[n, k]``)."""

    mean: F32Matrix  # [d]
    components: F32Matrix  # [k, d]

    @classmethod
    def fit(cls, vectors: F32Matrix, dim: int, seed: int = 0) -> PCAReducer:
        """Top ``dim`` principal components of ``vectors`` ``[n, d]``."""
        n, d = vectors.shape
        if not 1 <= dim <= min(n, d):
            raise ConfigError(f"pca_dim {dim} must be in [1, min(n_items={n}, dim={d})]")
        from sklearn.decomposition import PCA

        pca = PCA(n_components=dim, random_state=seed).fit(vectors)
        return cls(pca.mean_.astype(np.float32), np.asarray(pca.components_, dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def transform(self, vectors: F32Matrix) -> F32Matrix:
        return np.ascontiguousarray((vectors - self.mean) @ self.components.T, dtype=np.float32)
