"""Faiss ANN indexes (HNSW, IVF-Flat) behind ``VectorIndex``; inner product metric.

Per-query exclusions are done by over-fetching: each query asks Faiss for ``k`` plus its own
number of exclusions, then excluded ids are dropped (vectorised ragged membership) and the
rest cut to ``k``. Queries are grouped by power-of-two fetch size so one heavy user does not
make the whole batch fetch deep.

Replacing the vector of an existing id: IVF removes the old entry (``remove_ids``, a scan of
the inverted lists) and adds the new one. HNSW cannot remove, so the old internal entry
becomes a tombstone, hidden from results through a Faiss ``IDSelectorBitmap``; tombstones
still cost memory and graph hops, and ``compact()`` rebuilds the graph without them.

Threads: Faiss's global OpenMP setting is used as is (``faiss.omp_set_num_threads``).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import faiss
import numpy as np

from funnelrec.index.base import FloatMatrix, IdPositions, VectorIndex, check_add
from funnelrec.index.exact import HEADER, read_header
from funnelrec.io import atomic_dir, write_json
from funnelrec.ragged import IntArray, lengths, membership, offsets_from_lengths

FAISS_FILE = "index.faiss"
_T = TypeVar("_T", bound="FaissIndex")


def take_rows(offsets: IntArray, values: IntArray, rows: IntArray) -> tuple[IntArray, IntArray]:
    """Sub-batch of a ragged batch: ``(offsets[len(rows)+1], values)`` of the given rows."""
    lens = offsets[rows + 1] - offsets[rows]
    new_offsets = offsets_from_lengths(lens)
    shift = np.repeat(offsets[rows] - new_offsets[:-1], lens)
    return new_offsets, values[np.arange(new_offsets[-1], dtype=np.int64) + shift]


def drop_excluded(
    ids: IntArray, scores: FloatMatrix, offsets: IntArray, exclude: IntArray, k: int
) -> tuple[IntArray, FloatMatrix]:
    """Remove ``-1`` and excluded ids from sorted results ``[b, kf]``; keep the first ``k``.

    Returns:
        ids ``[b, k]`` and scores ``[b, k]``, padded with ``-1`` / ``-inf``.
    """
    b, kf = ids.shape
    flat_offsets = np.arange(b + 1, dtype=np.int64) * kf
    drop = ids < 0
    hit = membership(flat_offsets, np.maximum(ids, 0).ravel(), offsets, exclude)
    drop |= hit.reshape(b, kf)
    order = np.argsort(drop, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(ids, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    dropped = np.take_along_axis(drop, order, axis=1)
    ids[dropped] = -1
    scores[dropped] = -np.inf
    if kf < k:
        ids = np.pad(ids, ((0, 0), (0, k - kf)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, k - kf)), constant_values=-np.inf)
    return ids, scores


class FaissIndex(VectorIndex):
    """Shared search (over-fetch + exclusion filter) and persistence of Faiss indexes."""

    kind: ClassVar[str]

    @abstractmethod
    def _fetch(self, queries: FloatMatrix, kf: int) -> tuple[IntArray, FloatMatrix]:
        """Raw Faiss top ``kf``: our ids ``[b, kf]`` (``-1`` for none) and scores."""

    @abstractmethod
    def _capacity(self) -> int:
        """Number of entries Faiss holds (an upper bound on useful fetch depth)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor parameters, written to the JSON header."""

    def _search(
        self, q: FloatMatrix, offsets: IntArray, excl: IntArray, out: tuple[IntArray, FloatMatrix]
    ) -> None:
        """Approximate top ``k``: Faiss fetches ``k`` + the row's exclusions (bucketed by
        power of two), then the excluded ids are dropped."""
        out_ids, out_scores = out
        k = out_ids.shape[1]
        fetch = np.minimum(k + lengths(offsets), self._capacity())
        bucket = np.ceil(np.log2(fetch)).astype(np.int64)
        for b in np.unique(bucket):
            rows = np.flatnonzero(bucket == b)
            ids, scores = self._fetch(q[rows], int(fetch[rows].max()))
            sub_offsets, sub_excl = take_rows(offsets, excl, rows)
            out_ids[rows], out_scores[rows] = drop_excluded(ids, scores, sub_offsets, sub_excl, k)

    def save(self, directory: Path) -> None:
        """Write ``index.json`` (kind, dim, params), ``index.faiss`` and ``ids.npz``."""
        with atomic_dir(directory) as tmp:
            write_json(tmp / HEADER, {"kind": self.kind, "dim": self.dim, "params": self.params()})
            self._save_state(tmp)

    @abstractmethod
    def _save_state(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_state(self, directory: Path) -> None: ...

    @classmethod
    def load(cls: type[_T], directory: Path) -> _T:
        """Read an index written by ``save``."""
        header = read_header(directory, cls.kind)
        index = cls(int(header["dim"]), **header["params"])
        index._load_state(Path(directory))
        return index


class HNSWIndex(FaissIndex):
    """Faiss ``IndexHNSWFlat`` (inner product) with our ids and tombstoned replacements.

    Args:
        dim: Vector dimension.
        M: Graph degree (neighbours per node per layer).
        ef_construction: Candidate list size while building the graph.
        ef_search: Candidate list size while searching (raised to the fetch depth if lower).

    The defaults reach recall@100 ~0.98 against exact search on 1M clustered 64-d items
    (``benchmarks/index.py``).
    """

    kind: ClassVar[str] = "hnsw"

    def __init__(
        self, dim: int, M: int = 32, ef_construction: int = 64, ef_search: int = 128
    ) -> None:
        super().__init__(dim)
        if min(M, ef_construction, ef_search) < 1:
            got = f"M={M}, ef_construction={ef_construction}, ef_search={ef_search}"
            raise ValueError(f"HNSW parameters must be >= 1, got {got}")
        self.M, self.ef_construction, self.ef_search = M, ef_construction, ef_search
        self._index = self._new_faiss()
        self._labels: IntArray = np.zeros(0, dtype=np.int64)  # internal -> our id, -1 = tombstone
        self._pos = IdPositions()  # our id -> internal
        self._n_dead = 0

    def _new_faiss(self) -> Any:
        index = faiss.IndexHNSWFlat(self.dim, self.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        return index

    def params(self) -> dict[str, Any]:
        return {"M": self.M, "ef_construction": self.ef_construction, "ef_search": self.ef_search}

    def __len__(self) -> int:
        return len(self._labels) - self._n_dead

    @property
    def n_tombstones(self) -> int:
        """Superseded entries still in the graph (hidden from results)."""
        return self._n_dead

    def _capacity(self) -> int:
        return len(self._labels)

    def add(self, ids: IntArray, vectors: FloatMatrix) -> None:
        """Insert vectors ``[n, dim]``; an id already present tombstones its old entry."""
        ids, vectors = check_add(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        old = self._pos.get(ids)
        old = old[old >= 0]
        self._labels[old] = -1
        self._n_dead += len(old)
        start = len(self._labels)
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._pos.set(ids, np.arange(start, start + len(ids), dtype=np.int64))

    def _fetch(self, queries: FloatMatrix, kf: int) -> tuple[IntArray, FloatMatrix]:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing in stub
        params.efSearch = max(self.ef_search, kf)  # never shallower than the fetch depth
        if self._n_dead:
            bitmap = np.packbits(self._labels >= 0, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self._labels), faiss.swig_ptr(bitmap))
            params.sel = selector  # `selector` and `bitmap` stay alive for the call below
        scores, internal = self._index.search(queries, kf, params=params)
        ids = np.where(internal >= 0, self._labels[np.maximum(internal, 0)], -1)
        return ids.astype(np.int64), scores

    def compact(self) -> None:
        """Rebuild the graph from live entries only, dropping all tombstones."""
        if self._n_dead == 0:
            return
        live = np.flatnonzero(self._labels >= 0)
        vectors = self._index.reconstruct_n(0, len(self._labels))[live]
        ids = self._labels[live]
        self._index, self._labels = self._new_faiss(), np.zeros(0, dtype=np.int64)
        self._pos, self._n_dead = IdPositions(), 0
        self.add(ids, vectors)

    def _save_state(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / FAISS_FILE))
        np.savez(directory / "ids.npz", labels=self._labels)

    def _load_state(self, directory: Path) -> None:
        self._index = faiss.read_index(str(directory / FAISS_FILE))
        with np.load(directory / "ids.npz") as data:
            self._labels = data["labels"].astype(np.int64)
        live = np.flatnonzero(self._labels >= 0)
        self._pos.set(self._labels[live], live)
        self._n_dead = len(self._labels) - len(live)


class IVFIndex(FaissIndex):
    """Faiss ``IndexIVFFlat`` (inner product) storing our ids in its inverted lists.

    Trained on the first ``add`` (or an explicit ``train``) from a random sample of at most
    ``train_size`` vectors; ``nlist`` is lowered to the sample size when that is smaller.

    Args:
        dim: Vector dimension.
        nlist: Number of inverted lists (k-means centroids).
        nprobe: Lists scanned per query.
        train_size: Maximum training sample (default ``64 * nlist``).
        seed: Seed of the training sample.
    """

    kind: ClassVar[str] = "ivf"

    def __init__(
        self,
        dim: int,
        nlist: int = 1024,
        nprobe: int = 16,
        train_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(dim)
        if nlist < 1 or nprobe < 1:
            raise ValueError(f"nlist and nprobe must be >= 1, got {nlist}, {nprobe}")
        self.nlist, self.nprobe, self.seed = nlist, nprobe, seed
        self.train_size = train_size if train_size is not None else 64 * nlist
        self._index: Any = None

    def params(self) -> dict[str, Any]:
        keys = ("nlist", "nprobe", "train_size", "seed")
        return {key: getattr(self, key) for key in keys}

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _capacity(self) -> int:
        return len(self)

    def train(self, vectors: FloatMatrix) -> None:
        """Fit the coarse quantizer on (a sample of) ``vectors [n, dim]``; resets the index."""
        _, vectors = check_add(np.arange(len(vectors)), vectors, self.dim)
        if len(vectors) == 0:
            raise ValueError("cannot train an IVF index on zero vectors")
        if len(vectors) > self.train_size:
            pick = np.random.default_rng(self.seed).choice(len(vectors), self.train_size, False)
            vectors = vectors[np.sort(pick)]
        nlist = min(self.nlist, len(vectors))
        index = faiss.index_factory(self.dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        self._index = index

    def add(self, ids: IntArray, vectors: FloatMatrix) -> None:
        """Add vectors ``[n, dim]``; ids already present are removed first (a list scan)."""
        ids, vectors = check_add(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        if self._index is None:
            self.train(vectors)
        if self._index.ntotal:
            self._index.remove_ids(ids)
        self._index.add_with_ids(vectors, ids)

    def _fetch(self, queries: FloatMatrix, kf: int) -> tuple[IntArray, FloatMatrix]:
        params = faiss.SearchParametersIVF()
        params.nprobe = self.nprobe
        scores, ids = self._index.search(queries, kf, params=params)
        return ids.astype(np.int64), scores

    def _save_state(self, directory: Path) -> None:
        if self._index is not None:
            faiss.write_index(self._index, str(directory / FAISS_FILE))

    def _load_state(self, directory: Path) -> None:
        path = directory / FAISS_FILE
        self._index = faiss.read_index(str(path)) if path.exists() else None
