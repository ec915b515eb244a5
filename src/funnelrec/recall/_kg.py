"""A dataset's knowledge graph as integer arrays: entity/relation codes, item ↔ entity links.

Shared by the KG-aware channels (``kg_expand``, ``metapath``, ``lightgcn`` with ``kg``).
Entity codes cover every entity of the triples and of ``item_entities``; an item linked to an
entity *is* that entity (its node in the graph).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from funnelrec import needs
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.ragged import IntArray

KG_NEEDS = (
    needs.Need(
        (needs.KG,),
        "knowledge-graph triples linked to items",
        "load a KG (RecBole .kg/.link or KGCN kg.txt) or drop this channel",
    ),
)
"""Needs of every knowledge-graph channel (``kg_expand``, ``metapath``)."""


@dataclass(frozen=True)
class KnowledgeGraph:
    """Triples ``[T]`` as codes, with names and the item ↔ entity maps.

    Attributes:
        heads, relations, tails: ``[T]`` entity / relation codes.
        entity_names: external entity id per code.
        relation_names: relation name per code.
        item_entity: ``[n_items]`` entity code of each item, ``-1`` when unlinked.
        entity_item: ``[n_entities]`` item linked to each entity, ``-1`` for other entities.
    """

    heads: IntArray
    relations: IntArray
    tails: IntArray
    entity_names: list[str]
    relation_names: list[str]
    item_entity: IntArray
    entity_item: IntArray

    @property
    def n_entities(self) -> int:
        return len(self.entity_names)

    @property
    def n_relations(self) -> int:
        return len(self.relation_names)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> KnowledgeGraph:
        """Codes for ``dataset.kg`` / ``dataset.item_entities``.

        Raises:
            ConfigError: the dataset has no knowledge graph.
        """
        if dataset.kg is None or dataset.item_entities is None:
            raise ConfigError(
                f"dataset {dataset.name!r} has no knowledge graph (kg and item_entities); "
                "load one with a .kg/.link (RecBole) or kg.txt (KGCN) file"
            )
        kg = dataset.kg.select(pl.col(c).cast(pl.Utf8) for c in ("head", "relation", "tail"))
        links = dataset.item_entities.filter(pl.col("item_idx") < dataset.n_items)
        linked = links["entity"].cast(pl.Utf8)
        names = pl.concat([linked, kg["head"], kg["tail"]]).unique(maintain_order=True)
        code = {name: i for i, name in enumerate(names.to_list())}
        relation_names = kg["relation"].unique(maintain_order=True).to_list()
        rel_code = {name: i for i, name in enumerate(relation_names)}
        item_entity = np.full(dataset.n_items, -1, dtype=np.int64)
        item_idx = links["item_idx"].to_numpy().astype(np.int64)
        item_entity[item_idx] = [code[e] for e in linked.to_list()]
        entity_item = np.full(len(code), -1, dtype=np.int64)
        entity_item[item_entity[item_idx]] = item_idx
        return cls(
            heads=_codes(kg["head"], code),
            relations=_codes(kg["relation"], rel_code),
            tails=_codes(kg["tail"], code),
            entity_names=[str(n) for n in names.to_list()],
            relation_names=[str(r) for r in relation_names],
            item_entity=item_entity,
            entity_item=entity_item,
        )

    def entity_adjacency(self) -> sp.csr_matrix:
        """Symmetric binary ``[n_entities, n_entities]`` adjacency of the triples."""
        n = self.n_entities
        ones = np.ones(len(self.heads), dtype=np.float32)
        adj = sp.csr_matrix((ones, (self.heads, self.tails)), shape=(n, n))
        adj = adj + adj.T
        adj.data[:] = 1.0
        return sp.csr_matrix(adj)


def _codes(column: pl.Series, code: dict[str, int]) -> IntArray:
    return np.asarray([code[v] for v in column.to_list()], dtype=np.int64)


def item_names(dataset: Dataset) -> list[str]:
    """Display name per item: its ``title`` (or ``name``) when present, else its external id."""
    ids = [str(i) for i in dataset.item_ids.ids]
    for col in ("title", "name"):
        if col in dataset.items.columns:
            titles = dataset.items[col].cast(pl.Utf8).to_list()
            return [t if t else i for t, i in zip(titles, ids, strict=True)]
    return ids


def entity_labels(graph: KnowledgeGraph, names: list[str]) -> list[str]:
    """Display name per entity: the linked item's name, else the entity id."""
    out = list(graph.entity_names)
    for entity in np.flatnonzero(graph.entity_item >= 0):
        item = int(graph.entity_item[entity])
        if item < len(names):
            out[entity] = names[item]
    return out
