"""Explainable meta-path recall: user → item → entity → item through the knowledge graph.

An item ``j`` scores the weighted number of paths from the user's recent items ``h`` to it:
``Σ_h Σ_e B[h,e]·w_e·B[j,e]``, where ``B`` links items to KG entities (both directions of a
triple, and every item to its own entity so direct item–item relations count) and
``w_e = deg(e)^-hub_penalty`` damps hub entities. Every candidate carries a reason naming
its strongest path with item titles and relation names, e.g.
``because you liked "Toy Story (1995)": both film.film.director m.0bxtg``
(entity ids appear only where the data has no name for them).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.recall._history import history_matrix
from funnelrec.recall._kg import KG_NEEDS, KnowledgeGraph, entity_labels, item_names
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import RECALL
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

_SELF = 1  # relation value of an item's link to its own entity (KG relations are code + 2)


class MetaPathParams(Params):
    """``max_history``: recent items that start paths; ``hub_penalty``: exponent of the
    entity-degree damping; ``max_degree``: entities linked to more items are skipped
    (``None``: keep all); ``chunk``: query rows scored at once (bounds memory)."""

    max_history: int = Field(default=50, ge=1)
    hub_penalty: float = Field(default=0.5, ge=0)
    max_degree: int | None = Field(default=None, ge=2)
    chunk: int = Field(default=256, ge=1)


@RECALL.register("metapath")
class MetaPathRecall(RecallChannel[MetaPathParams]):
    """Users without a history, or whose items have no KG paths, get an empty row."""

    params_model = MetaPathParams
    needs = KG_NEEDS
    example_params: ClassVar[dict[str, Any]] = {}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        graph = KnowledgeGraph.from_dataset(dataset)
        links = _item_links(graph, dataset.n_items)
        degree = np.diff(sp.csc_matrix(links).indptr).astype(np.float64)
        weight = np.where(degree >= 2, np.maximum(degree, 1.0) ** -self.params.hub_penalty, 0.0)
        if self.params.max_degree is not None:
            weight[degree > self.params.max_degree] = 0.0
        self.links_ = links
        self.entity_weight_ = weight.astype(np.float32)
        names = item_names(dataset)
        self.item_names_ = names
        self.entity_labels_ = entity_labels(graph, names)
        self.relation_names_ = graph.relation_names
        self.item_entity_ = graph.item_entity
        pop = dataset.item_popularity
        self.tiebreak_ = (1e-4 * pop / max(pop.max(initial=0.0), 1.0)).astype(np.float32)
        return self

    def _retrieve(self, query: Query, k: int) -> Candidates:
        parts = [
            self._chunk(
                query.select(np.arange(lo, min(lo + self.params.chunk, query.batch_size))), k
            )
            for lo in range(0, query.batch_size, self.params.chunk)
        ]
        if not parts:
            return Candidates.empty(0, self.channel_name)
        return _concat(parts, self.channel_name)

    def _chunk(self, query: Query, k: int) -> Candidates:
        links = sp.csr_matrix(self.links_)
        n_items = links.shape[0]
        recency = history_matrix(query, self.params.max_history, n_items, recency=True)
        hist = recency.copy()
        hist.data[:] = 1.0
        through = sp.csr_matrix((hist @ (links > 0)).multiply(self.entity_weight_[None, :]))
        scores = sp.csr_matrix(through @ (links > 0).T.astype(np.float32))
        scores.eliminate_zeros()
        scores.data += self.tiebreak_[scores.indices]  # ties: popular first
        cands = Candidates.from_flat(
            scores.indptr.astype(np.int64), scores.indices.astype(np.int64),
            scores.data.astype(np.float32), self.channel_name,
        )  # fmt: skip
        cands = cands.excluding(query).topk(k)
        reasons = self._reasons(cands, through, recency, links)
        return dataclasses.replace(cands, reasons=reasons)

    def _reasons(
        self,
        cands: Candidates,
        through: sp.csr_matrix,
        recency: sp.csr_matrix,
        links: sp.csr_matrix,
    ) -> npt.NDArray[np.object_]:
        """The strongest path of each candidate as text (vectorised path search)."""
        if len(cands) == 0:
            return np.zeros(0, dtype=object)
        rows, items = cands.row_ids(), cands.item_idx
        paths = sp.csr_matrix(through[rows].multiply(links[items] > 0))
        entity = np.asarray(paths.argmax(axis=1)).ravel()
        n_paths = np.diff(paths.indptr)
        sources = sp.csr_matrix(recency[rows].multiply(sp.csr_matrix(links.T)[entity] > 0))
        source = np.asarray(sources.argmax(axis=1)).ravel()
        rel_h = np.asarray(links[source, entity]).ravel().astype(np.int64)
        rel_j = np.asarray(links[items, entity]).ravel().astype(np.int64)
        return np.asarray(
            [
                self._reason(int(h), int(j), int(e), int(rh), int(rj), int(n))
                for h, j, e, rh, rj, n in zip(
                    source, items, entity, rel_h, rel_j, n_paths, strict=True
                )
            ],
            dtype=object,
        )

    def _reason(self, h: int, j: int, e: int, rel_h: int, rel_j: int, n: int) -> str:
        title_h, title_j = self.item_names_[h], self.item_names_[j]
        label = self.entity_labels_[e]
        start = f'because you liked "{title_h}"'
        more = f" (+{n - 1} more link{'s' if n > 2 else ''})" if n > 1 else ""
        if rel_j == _SELF:
            text = f'{start}: {self._relation(rel_h)} "{title_j}"'
        elif rel_h == _SELF:
            text = f'{start}: "{title_j}" {self._relation(rel_j)} it'
        elif rel_h == rel_j:
            text = f"{start}: both {self._relation(rel_h)} {label}"
        else:
            via = f"{self._relation(rel_h)} {label}"
            text = f'{start} ({via}): "{title_j}" {self._relation(rel_j)} {label}'
        return text + more

    def _relation(self, value: int) -> str:
        return str(self.relation_names_[value - 2]) if value >= 2 else "is"


def _item_links(graph: KnowledgeGraph, n_items: int) -> sp.csr_matrix:
    """``[n_items, n_entities]``: relation code + 2 of a triple between the item's entity and
    the entity (either direction), ``1`` for the item's own entity."""
    head_item = graph.entity_item[graph.heads]
    tail_item = graph.entity_item[graph.tails]
    fwd, bwd = head_item >= 0, tail_item >= 0
    linked = np.flatnonzero(graph.item_entity >= 0)
    rows = np.concatenate([head_item[fwd], tail_item[bwd], linked])
    cols = np.concatenate([graph.tails[fwd], graph.heads[bwd], graph.item_entity[linked]])
    vals = np.concatenate(
        [graph.relations[fwd] + 2, graph.relations[bwd] + 2, np.full(len(linked), _SELF)]
    ).astype(np.float32)
    order = np.lexsort((-vals, cols, rows))  # one relation per (item, entity): self first
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    keep = np.flatnonzero(first)
    return sp.csr_matrix(
        (vals[keep], (rows[keep], cols[keep])),
        shape=(n_items, graph.n_entities),
    )


def _concat(parts: list[Candidates], channel: str) -> Candidates:
    """Row-wise stacking of candidate batches (each a contiguous block of query rows)."""
    lengths = np.concatenate([p.lengths() for p in parts])
    reasons = [p.reasons for p in parts]
    out = Candidates.from_flat(
        ragged.offsets_from_lengths(lengths),
        np.concatenate([p.item_idx for p in parts]),
        np.concatenate([p.scores for p in parts]),
        channel,
    )
    joined = np.concatenate([r if r is not None else np.zeros(0, dtype=object) for r in reasons])
    return dataclasses.replace(out, reasons=joined.astype(object))
