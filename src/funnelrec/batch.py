"""``Batch``: the typed model input of the ranking models, and its ``Schema``.

A batch holds ``N`` examples (one per (query, candidate) pair or table row):

* ``sparse`` ``[N, S]`` int64 codes, one column per sparse field (``0`` pad, ``1`` OOV);
* ``dense`` ``[N, D]`` float32 values;
* ``multi`` one ``[N, L_j]`` int64 code matrix per multi-valued field (``0`` pads);
* ``seq`` ``[N, K]`` int64 codes of the user's last ``K`` behaviours, right-aligned (newest
  last, ``0`` pads on the left), in the item-id code space;
* optional ``label`` ``[N]`` float32 and ``group`` ``[N]`` int64 (query of each example).

``as_dict``/``from_mapping`` convert to and from the ``{name: tensor}`` mapping that the
training loop moves between devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor


@dataclass(frozen=True)
class FieldSpec:
    """One input field: ``size`` codes (sparse/multi), its ``source`` side and ``length``
    (codes per row of a multi-valued field)."""

    name: str
    size: int
    source: str
    length: int = 1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FieldSpec:
        return cls(**raw)


@dataclass(frozen=True)
class Schema:
    """Field layout of a ``Batch``; models are built from it.

    Attributes:
        sparse, multi, dense: the fields in column order.
        seq_len: ``K`` (``0``: no behaviour sequence).
        seq_size: number of codes of the sequence (= item id) vocabulary.
        item_field, user_field: column of the item / user id in ``sparse`` (or ``None``).
    """

    sparse: tuple[FieldSpec, ...]
    multi: tuple[FieldSpec, ...] = ()
    dense: tuple[FieldSpec, ...] = ()
    seq_len: int = 0
    seq_size: int = 0
    item_field: int | None = None
    user_field: int | None = None

    @property
    def n_fields(self) -> int:
        return len(self.sparse) + len(self.multi) + len(self.dense)

    def split_fields(self, fields: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
        """Field indices (embedding order) as ``(sparse columns, multi fields, dense columns)``."""
        n_sparse, n_multi = len(self.sparse), len(self.multi)
        sparse = [j for j in fields if j < n_sparse]
        multi = [j - n_sparse for j in fields if n_sparse <= j < n_sparse + n_multi]
        dense = [j - n_sparse - n_multi for j in fields if j >= n_sparse + n_multi]
        return sparse, multi, dense

    def sources(self) -> list[str]:
        """Source of every field in embedding order (sparse, multi, dense)."""
        return [f.source for f in (*self.sparse, *self.multi, *self.dense)]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Schema:
        body = dict(raw)
        for key in ("sparse", "multi", "dense"):
            body[key] = tuple(FieldSpec.from_json(f) for f in raw.get(key, ()))
        return cls(**body)


@dataclass(frozen=True)
class Batch:
    """Model inputs for ``N`` examples (see module doc for shapes)."""

    sparse: Tensor
    dense: Tensor
    multi: tuple[Tensor, ...] = ()
    seq: Tensor | None = None
    label: Tensor | None = None
    group: Tensor | None = None

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    @classmethod
    def from_numpy(
        cls,
        sparse: npt.NDArray[np.int64],
        dense: npt.NDArray[np.float32],
        multi: Sequence[npt.NDArray[np.int64]] = (),
        seq: npt.NDArray[np.int64] | None = None,
        label: npt.ArrayLike | None = None,
    ) -> Batch:
        """Batch sharing memory with the given arrays where their dtypes allow."""
        n = sparse.shape[0]
        return cls(
            sparse=torch.from_numpy(np.ascontiguousarray(sparse, dtype=np.int64)),
            dense=torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32).reshape(n, -1)),
            multi=tuple(torch.from_numpy(np.ascontiguousarray(m, dtype=np.int64)) for m in multi),
            seq=None if seq is None else torch.from_numpy(np.ascontiguousarray(seq, np.int64)),
            label=None if label is None else torch.as_tensor(np.asarray(label, np.float32)),
        )

    def _map(self, fn: Any) -> Batch:
        return Batch(
            sparse=fn(self.sparse),
            dense=fn(self.dense),
            multi=tuple(fn(m) for m in self.multi),
            seq=None if self.seq is None else fn(self.seq),
            label=None if self.label is None else fn(self.label),
            group=None if self.group is None else fn(self.group),
        )

    def to(self, device: torch.device | str) -> Batch:
        """Every tensor moved to ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=True))

    def slice(self, start: int, stop: int) -> Batch:
        """Examples ``start:stop`` as views (no copy)."""
        return self._map(lambda t: t[start:stop])

    def take(self, rows: Tensor | npt.NDArray[np.int64]) -> Batch:
        """The examples at ``rows`` ``[M]`` (in that order)."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        return self._map(lambda t: t[idx])

    def with_labels(self, label: Tensor | None, group: Tensor | None = None) -> Batch:
        return dataclasses.replace(self, label=label, group=group)

    def as_dict(self) -> dict[str, Tensor]:
        """``{name: tensor}`` for the training loop (``multi`` as ``multi0``, ``multi1``...)."""
        out = {"sparse": self.sparse, "dense": self.dense}
        out.update({f"multi{j}": m for j, m in enumerate(self.multi)})
        for name in ("seq", "label", "group"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Tensor]) -> Batch:
        n_multi = sum(1 for k in data if k.startswith("multi"))
        return cls(
            sparse=data["sparse"],
            dense=data["dense"],
            multi=tuple(data[f"multi{j}"] for j in range(n_multi)),
            seq=data.get("seq"),
            label=data.get("label"),
            group=data.get("group"),
        )

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        """Examples of several batches with the same layout, in order."""
        first = batches[0]

        def cat(get: Any) -> Tensor:
            return torch.cat([get(b) for b in batches])

        return Batch(
            sparse=cat(lambda b: b.sparse),
            dense=cat(lambda b: b.dense),
            multi=tuple(cat(lambda b, j=j: b.multi[j]) for j in range(len(first.multi))),
            seq=None if first.seq is None else cat(lambda b: b.seq),
            label=None if first.label is None else cat(lambda b: b.label),
            group=None if first.group is None else cat(lambda b: b.group),
        )
