"""``IdMap``: the only place where external ids become dense indices and back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from funnelrec.errors import UnknownIdError

ExternalId = str | int


class IdMap:
    """Bijection between external ids (``str`` or ``int``) and dense indices ``0..n-1``.

    Indices are assigned in order of first appearance. ``lookup`` maps unknown ids to ``-1``
    (cold start is behaviour, not an error); ``index`` raises ``UnknownIdError``.
    """

    def __init__(self, ids: Iterable[ExternalId] = (), name: str = "id") -> None:
        self.name = name
        self._ids: list[ExternalId] = []
        self._index: dict[ExternalId, int] = {}
        self.extend(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external: object) -> bool:
        return external in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def extend(self, ids: Iterable[ExternalId] | npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
        """Add ids not seen yet; return the dense index of every given id.

        A numpy array takes a vectorised path: Python work only per *distinct* id.
        """
        if isinstance(ids, np.ndarray):
            try:
                return self._extend_array(ids)
            except TypeError:  # unorderable mix (e.g. None among strings)
                ids = ids.tolist()
        out: list[int] = []
        for ext in ids:
            idx = self._index.get(ext)
            if idx is None:
                idx = len(self._ids)
                self._index[ext] = idx
                self._ids.append(ext)
            out.append(idx)
        return np.asarray(out, dtype=np.int64)

    def _extend_array(self, ids: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
        if len(ids) == 0:
            return np.zeros(0, dtype=np.int64)
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # first-appearance order
        values = uniq[order].tolist()
        get = self._index.get
        known = np.array([-1 if i is None else i for i in map(get, values)], dtype=np.int64)
        new = np.flatnonzero(known < 0)
        known[new] = np.arange(len(self._ids), len(self._ids) + len(new))
        added = [values[i] for i in new.tolist()]
        self._ids.extend(added)
        self._index.update(zip(added, known[new].tolist(), strict=True))
        codes = np.empty(len(values), dtype=np.int64)
        codes[order] = known
        out: npt.NDArray[np.int64] = codes[inverse.reshape(-1)]
        return out

    def lookup(self, ids: Iterable[ExternalId]) -> npt.NDArray[np.int64]:
        """Dense indices of ``ids``; ``-1`` for unknown ids."""
        get = self._index.get
        return np.asarray([get(ext, -1) for ext in ids], dtype=np.int64)

    def index(self, external: ExternalId) -> int:
        """Dense index of one id; raises ``UnknownIdError`` naming it if unknown."""
        try:
            return self._index[external]
        except KeyError:
            raise UnknownIdError(f"unknown {self.name}: {external!r}") from None

    def external(self, idx: Sequence[int] | npt.NDArray[np.integer[Any]]) -> list[ExternalId]:
        """External ids of dense indices."""
        ids = self._ids
        return [ids[int(i)] for i in idx]

    @property
    def ids(self) -> list[ExternalId]:
        return list(self._ids)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ids": self._ids}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> IdMap:
        return cls(payload["ids"], name=str(payload.get("name", "id")))


def coerce_ids(ids: IdMap, raw: Sequence[ExternalId]) -> list[ExternalId]:
    """``raw`` ids in the map's id type: in a map of integer ids a digit string such as
    ``"196"`` is ``196``; in a map of string ids ``196`` is ``"196"``. Ids the map knows as
    given stay as they are; the rest are returned unchanged (unknown: cold start)."""
    out: list[ExternalId] = []
    for value in raw:
        if value in ids:
            out.append(value)
        elif isinstance(value, str) and value.lstrip("-").isdigit() and int(value) in ids:
            out.append(int(value))
        elif isinstance(value, int) and str(value) in ids:
            out.append(str(value))
        else:
            out.append(value)
    return out
