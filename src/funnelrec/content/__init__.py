"""Multimodal item content: encoders (text, image, user-registered), a content-hash vector
cache, batched incremental extraction, PCA, and vector storage.

Typical use::

    encoder = create_encoder("minilm")
    cache = VectorCache("cache/content", encoder.fingerprint, encoder.dim)
    vectors, report = extract(item_texts(ds.items, ["title", "tags"]), encoder, cache)
    ds = with_vector_column(ds, vectors, "content")  # item-tower / ranker / re-ranker input
"""

from funnelrec.content.cache import VectorCache, content_key
from funnelrec.content.extract import ExtractReport, extract, item_texts
from funnelrec.content.reduce import PCAReducer
from funnelrec.content.registry import (
    ContentEncoder,
    create_encoder,
    encoder_names,
    register_encoder,
)
from funnelrec.content.store import load_vectors, save_vectors, vector_column, with_vector_column

__all__ = [
    "ContentEncoder",
    "ExtractReport",
    "PCAReducer",
    "VectorCache",
    "content_key",
    "create_encoder",
    "encoder_names",
    "extract",
    "item_texts",
    "load_vectors",
    "register_encoder",
    "save_vectors",
    "vector_column",
    "with_vector_column",
]
