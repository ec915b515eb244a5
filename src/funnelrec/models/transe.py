"""Knowledge-graph embeddings: TransE (Bordes et al., 2013) and RotatE (Sun et al., 2019).

Both map a head entity and a relation to a point ``q = f(h, r)`` in entity space and score a
triple by the negative squared distance ``-‖q - t‖²``: TransE translates (``q = h + r``),
RotatE rotates in the complex plane (``q = h ∘ e^{iθ_r}``, entity vectors hold the real
parts then the imaginary parts). The squared distance expands to an inner product, so
``q`` can search an index of ``[t, -‖t‖²]`` item vectors with query ``[2q, 1]``.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from funnelrec.models.layers import init_embeddings


class KGEmbedding(nn.Module, abc.ABC):
    """Base: entity table ``[n_entities, entity_dim]`` and ``project(h, r)``."""

    def __init__(self, n_entities: int, entity_dim: int) -> None:
        super().__init__()
        self.entity = nn.Embedding(n_entities, entity_dim)

    @abc.abstractmethod
    def project(self, head: Tensor, relation: Tensor) -> Tensor:
        """``[B, entity_dim]`` point ``f(h, r)`` of head vectors ``[B, entity_dim]`` and
        relation ids ``[B]``."""
        raise NotImplementedError

    def score(self, head: Tensor, relation: Tensor, tail: Tensor) -> Tensor:
        """``-‖f(h, r) - t‖²`` for entity ids ``head [B]``, ``relation [B]`` and ``tail``
        ``[B]`` or ``[B, N]`` (``N`` tails per row)."""
        q = self.project(self.entity(head), relation)
        t: Tensor = self.entity(tail)
        if t.dim() == 3:
            q = q.unsqueeze(1)
        out: Tensor = -(q - t).pow(2).sum(-1)
        return out


class TransE(KGEmbedding):
    """``f(h, r) = h + r``."""

    def __init__(self, n_entities: int, n_relations: int, dim: int, init_std: float = 0.1):
        super().__init__(n_entities, dim)
        self.relation = nn.Embedding(n_relations, dim)
        init_embeddings(self, init_std)

    def project(self, head: Tensor, relation: Tensor) -> Tensor:
        out: Tensor = head + self.relation(relation)
        return out


class RotatE(KGEmbedding):
    """``f(h, r) = h ∘ e^{iθ_r}``: entity vectors are ``[re | im]`` (``2·dim``), relations
    are ``dim`` phases, so every relation is a rotation (composition, inversion, symmetry)."""

    def __init__(self, n_entities: int, n_relations: int, dim: int, init_std: float = 0.1):
        super().__init__(n_entities, 2 * dim)
        self.phase = nn.Embedding(n_relations, dim)
        init_embeddings(self, init_std)
        nn.init.uniform_(self.phase.weight, -torch.pi, torch.pi)
        self.dim = dim

    def project(self, head: Tensor, relation: Tensor) -> Tensor:
        re, im = head[..., : self.dim], head[..., self.dim :]
        theta = self.phase(relation)
        cos, sin = torch.cos(theta), torch.sin(theta)
        return torch.cat([re * cos - im * sin, re * sin + im * cos], dim=-1)


def make_kge(
    kind: str, n_entities: int, n_relations: int, dim: int, init_std: float
) -> KGEmbedding:
    """``transe`` or ``rotate`` (``dim``: TransE's vector size, RotatE's complex size)."""
    if kind == "transe":
        return TransE(n_entities, n_relations, dim, init_std)
    if kind == "rotate":
        return RotatE(n_entities, n_relations, dim, init_std)
    raise ValueError(f"unknown KG embedding {kind!r}; known: transe, rotate")
