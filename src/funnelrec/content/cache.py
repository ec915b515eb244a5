"""``VectorCache``: content-hash → vector store on disk, so unchanged items are never
re-encoded.

One folder per encoder fingerprint (``<root>/<sha1(fingerprint)[:16]>/``) holding
``vectors.f32`` (raw float32 rows, read as a NumPy memory-map), ``keys.bin`` (the 20-byte
SHA-1 digest of each row's content) and ``meta.json`` (fingerprint, dim). New vectors are
appended; rows are written before their keys, so an interrupted append leaves only unused
rows, which the next open truncates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from funnelrec.content.registry import F32Matrix
from funnelrec.errors import DataError
from funnelrec.ragged import IntArray

KEY_BYTES = 20


def content_key(data: bytes) -> bytes:
    """SHA-1 digest of one item's content."""
    return hashlib.sha1(data, usedforsecurity=False).digest()


class VectorCache:
    """Vectors of one encoder (identified by ``fingerprint``) keyed by content hash."""

    def __init__(self, root: str | Path, fingerprint: str, dim: int) -> None:
        tag = hashlib.sha1(fingerprint.encode(), usedforsecurity=False).hexdigest()[:16]
        self.directory = Path(root) / tag
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fingerprint, self.dim = fingerprint, dim
        self._check_meta()
        self._vec_path = self.directory / "vectors.f32"
        self._key_path = self.directory / "keys.bin"
        self._vec_path.touch()
        self._key_path.touch()
        raw = self._key_path.read_bytes()
        n_keys = len(raw) // KEY_BYTES
        n_rows = self._vec_path.stat().st_size // (4 * dim)
        n = min(n_keys, n_rows)
        if n_keys != n or n_rows != n or len(raw) % KEY_BYTES:  # interrupted append
            self._truncate(n)
        self._rows = {raw[i * KEY_BYTES : (i + 1) * KEY_BYTES]: i for i in range(n)}
        self._memmap: np.memmap[Any, np.dtype[np.float32]] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def _check_meta(self) -> None:
        meta_path = self.directory / "meta.json"
        meta = {"fingerprint": self.fingerprint, "dim": self.dim}
        if meta_path.is_file():
            stored = json.loads(meta_path.read_text())
            if stored != meta:
                raise DataError(f"{meta_path}: cache belongs to {stored}, not {meta}")
        else:
            meta_path.write_text(json.dumps(meta))

    def _truncate(self, n: int) -> None:
        with self._vec_path.open("r+b") as f:
            f.truncate(n * 4 * self.dim)
        with self._key_path.open("r+b") as f:
            f.truncate(n * KEY_BYTES)

    def lookup(self, keys: Iterable[bytes]) -> IntArray:
        """``[n]`` cache rows of ``keys`` (``-1`` = not cached)."""
        return np.asarray([self._rows.get(k, -1) for k in keys], dtype=np.int64)

    def vectors(self, rows: IntArray) -> F32Matrix:
        """``[n, dim]`` cached vectors of ``rows`` (from ``lookup``; all must be ``>= 0``)."""
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._memmap is None or len(self._memmap) < len(self._rows):
            shape = (len(self._rows), self.dim)
            self._memmap = np.memmap(self._vec_path, dtype=np.float32, mode="r", shape=shape)
        return np.asarray(self._memmap[rows], dtype=np.float32)

    def add(self, keys: list[bytes], vectors: F32Matrix) -> None:
        """Append vectors ``[n, dim]`` under ``keys`` (keys already cached are skipped)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {len(keys)} x {self.dim} vectors, got {vectors.shape}")
        fresh: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._rows and key not in fresh:
                fresh[key] = i
        if not fresh:
            return
        picked = np.fromiter(fresh.values(), dtype=np.int64, count=len(fresh))
        with self._vec_path.open("ab") as f:
            f.write(vectors[picked].tobytes())
        with self._key_path.open("ab") as f:
            f.write(b"".join(fresh))
        start = len(self._rows)
        self._rows.update({key: start + j for j, key in enumerate(fresh)})
