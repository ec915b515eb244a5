"""Build or load any ``VectorIndex`` by kind name (``exact``, ``hnsw``, ``ivf``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from funnelrec.index.base import VectorIndex
from funnelrec.index.exact import HEADER, ExactIndex
from funnelrec.index.faiss_index import HNSWIndex, IVFIndex
from funnelrec.io import read_json

IndexKind = Literal["exact", "hnsw", "ivf"]
INDEXES: dict[str, type[VectorIndex]] = {"exact": ExactIndex, "hnsw": HNSWIndex, "ivf": IVFIndex}


def _index_class(kind: str) -> type[VectorIndex]:
    if kind not in INDEXES:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {sorted(INDEXES)}")
    return INDEXES[kind]


def make_index(kind: IndexKind | str, dim: int, **params: Any) -> VectorIndex:
    """A new empty index of ``kind`` for ``dim``-dimensional vectors.

    Raises:
        ValueError: for an unknown kind or a parameter the kind does not take.
    """
    cls = _index_class(kind)
    accepted = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = sorted(set(params) - set(accepted[1:]))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for index {kind!r}; expected {accepted[1:]}"
        )
    return cls(dim, **params)


def load_index(directory: str | Path) -> VectorIndex:
    """Load an index saved by ``VectorIndex.save``, whatever its kind (read from ``index.json``)."""
    path = Path(directory) / HEADER
    if not path.is_file():
        raise FileNotFoundError(f"no saved index at {directory} ({HEADER} is missing)")
    kind = read_json(path).get("kind")
    return _index_class(str(kind)).load(Path(directory))
