"""Shared parts of the CTR models: config, field embeddings, the ``CTRModel`` base class.

Every model turns a ``Batch`` into logits ``[N]``. ``FieldEmbedding`` maps each input field
to one ``d``-vector (sparse codes, mean-pooled multi-valued codes, dense value × learned
vector) giving ``[N, F, d]``, plus the first-order (linear) term ``[N]``. A model with
``interest != "none"`` appends the short-term interest vector (an encoder over the last ``K``
behaviours, ``interest.py``) as one more field; the user-id field is the long-term interest.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.interest import ShortTermInterest
from funnelrec.models.layers import hidden_layers

Interest = Literal["none", "mean", "gru", "transformer"]


@dataclass(frozen=True)
class CTRConfig:
    """Hyper-parameters of the CTR models (each model reads the ones it needs).

    Attributes:
        dim: embedding size ``d``.
        hidden, dropout: deep part (MLP) sizes and dropout.
        interest: short-term interest encoder over the behaviour sequence.
        cross_layers, cross_rank: DCN-v2 cross layers and their rank (``0``: full).
        cin: xDeepFM CIN feature maps per layer.
        heads, blocks: AutoInt attention heads and interacting layers (one block = 2nd-order
            crosses, more blocks = higher order); att_hidden: DIN attention MLP.
        init_std: normal init of the embedding tables.
    """

    dim: int = 16
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.0
    interest: Interest = "none"
    cross_layers: int = 2
    cross_rank: int = 0
    cin: tuple[int, ...] = (32, 32)
    heads: int = 2
    blocks: int = 2
    att_hidden: tuple[int, ...] = (64, 32)
    init_std: float = 0.01


class FieldEmbedding(nn.Module):
    """One embedding table for all sparse and multi-valued fields (per-field offsets), a
    vector per dense field, the first-order weights, and the sequence embedding (sharing the
    item-id rows when the schema has an item-id field)."""

    offsets: Tensor

    def __init__(self, schema: Schema, dim: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.schema = schema
        sizes = [f.size for f in schema.sparse] + [f.size for f in schema.multi]
        starts = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0) if sizes else None
        self.register_buffer("offsets", starts if starts is not None else torch.zeros(0).long())
        total = max(sum(sizes), 1)
        self.table = nn.Embedding(total, dim)
        self.weight = nn.Embedding(total, 1)
        n_dense = len(schema.dense)
        self.dense_vec = nn.Parameter(torch.randn(n_dense, dim) * init_std)
        self.dense_weight = nn.Linear(n_dense, 1) if n_dense else None
        self.bias = nn.Parameter(torch.zeros(1))
        own_seq = schema.seq_len > 0 and schema.item_field is None
        self.seq_table = nn.Embedding(schema.seq_size, dim) if own_seq else None
        nn.init.normal_(self.table.weight, 0.0, init_std)
        nn.init.zeros_(self.weight.weight)
        if self.dense_weight is not None:
            nn.init.zeros_(self.dense_weight.weight)
        if self.seq_table is not None:
            nn.init.normal_(self.seq_table.weight, 0.0, init_std)

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(fields [N, F, d], linear [N])``; field order: sparse, multi, dense."""
        return self.fields(batch), self.first_order(batch)

    def fields(self, batch: Batch, keep: Tensor | None = None) -> Tensor:
        """``[N, F, d]`` field vectors (sparse, multi, dense order); with ``keep`` (sorted
        field indices ``[F']``) only those fields, ``[N, F', d]``: the same values as
        ``fields(batch)[:, keep]``, without looking up the others."""
        s = self.schema
        n_sparse, n_multi, n_dense = len(s.sparse), len(s.multi), len(s.dense)
        wanted = range(n_sparse + n_multi + n_dense) if keep is None else keep.tolist()
        sparse, _, dense = s.split_fields(wanted)
        parts = []
        if len(sparse) == n_sparse and n_sparse:  # all of them: no column gather
            parts.append(self.table(batch.sparse + self.offsets[:n_sparse]))
        elif sparse:
            cols = torch.tensor(sparse, dtype=torch.long)
            parts.append(self.table(batch.sparse[:, cols] + self.offsets[cols]))
        for j, codes in enumerate(batch.multi):
            if n_sparse + j in wanted:
                mask = (codes > 0).unsqueeze(-1).float()
                denom = mask.sum(1).clamp_min(1.0)
                table = self.table(codes + self.offsets[n_sparse + j])
                parts.append(((table * mask).sum(1) / denom).unsqueeze(1))
        if len(dense) == n_dense and n_dense:
            parts.append(batch.dense.unsqueeze(-1) * self.dense_vec)
        elif dense:
            cols = torch.tensor(dense, dtype=torch.long)
            parts.append(batch.dense[:, cols].unsqueeze(-1) * self.dense_vec[cols])
        return torch.cat(parts, dim=1)

    def first_order(self, batch: Batch) -> Tensor:
        """``[N]`` the first-order (linear) term: bias + field weights (mean over a
        multi-valued field's codes) + dense values × their weights."""
        n_sparse = len(self.schema.sparse)
        linear = self.bias.expand(len(batch))
        if n_sparse:
            linear = linear + self.weight(batch.sparse + self.offsets[:n_sparse]).sum((1, 2))
        for j, codes in enumerate(batch.multi):
            mask = (codes > 0).unsqueeze(-1).float()
            denom = mask.sum(1).clamp_min(1.0)
            shifted = codes + self.offsets[n_sparse + j]
            linear = linear + (self.weight(shifted) * mask).sum((1, 2)) / denom.squeeze(-1)
        if self.dense_weight is not None:
            linear = linear + self.dense_weight(batch.dense).squeeze(-1)
        return linear

    def sequence(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(embeddings [N, K, d] with pads zeroed, mask [N, K])`` of the behaviour sequence."""
        assert batch.seq is not None, "the batch has no behaviour sequence"
        seq, mask = batch.seq, batch.seq > 0
        if self.seq_table is not None:
            emb = self.seq_table(seq)
        else:
            assert self.schema.item_field is not None
            emb = self.table(seq + self.offsets[self.schema.item_field])
        return emb * mask.unsqueeze(-1), mask

    def sequence_sum(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(sum [N, d], count [N])`` of the behaviour embeddings, pads left out: one
        ``embedding_bag``, without the ``[N, K, d]`` block of ``sequence``."""
        assert batch.seq is not None, "the batch has no behaviour sequence"
        seq, mask = batch.seq, batch.seq > 0
        if self.seq_table is not None:
            weight, codes = self.seq_table.weight, seq
        else:
            assert self.schema.item_field is not None
            weight, codes = self.table.weight, seq + self.offsets[self.schema.item_field]
        total = F.embedding_bag(codes, weight, mode="sum", per_sample_weights=mask.to(weight.dtype))
        return total, mask.sum(1)

    def item(self, fields: Tensor) -> Tensor:
        """``[N, d]`` candidate-item embedding taken from ``fields``."""
        if self.schema.item_field is None:
            raise ValueError("this model needs an item_id field")
        return fields[:, self.schema.item_field]


class CTRModel(nn.Module, abc.ABC):
    """Base of the ranking models: ``forward(batch) -> logits [N]``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__()
        self.schema, self.config = schema, config
        self.embed = FieldEmbedding(schema, config.dim, config.init_std)
        use = config.interest != "none" and schema.seq_len > 0
        self.interest = (
            ShortTermInterest(config.interest, config.dim, schema.seq_len, config.heads)
            if use
            else None
        )

    @property
    def n_fields(self) -> int:
        """Fields after embedding (input fields + the short-term interest field)."""
        return max(self.schema.n_fields + (self.interest is not None), 1)

    def inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(fields [N, F, d], linear [N])`` with the short-term interest field appended."""
        fields: Tensor
        linear: Tensor
        fields, linear = self.embed(batch)
        if self.interest is not None:
            seq, mask = self.embed.sequence(batch)
            fields = torch.cat([fields, self.interest(seq, mask).unsqueeze(1)], dim=1)
        return fields, linear

    def forward(self, batch: Batch | Mapping[str, Tensor]) -> Tensor:
        """Logits ``[N]`` (a mapping is read with ``Batch.from_mapping``)."""
        return self.score(batch if isinstance(batch, Batch) else Batch.from_mapping(batch))

    @abc.abstractmethod
    def score(self, batch: Batch) -> Tensor:
        """Logits ``[N]`` of a typed batch."""
        raise NotImplementedError

    @property
    def reads_sequence(self) -> bool:
        """Whether ``score`` reads ``batch.seq`` (here: the short-term interest field)."""
        return self.interest is not None

    def score_queries(
        self, batch: Batch, query_seq: Tensor | None, rows: Tensor, items: Tensor
    ) -> Tensor:
        """Logits ``[N]`` of (query, candidate) pairs given each query's behaviours once.

        Args:
            batch: the pairs' inputs without ``seq`` (``FeatureBuilder.build(...,
                with_seq=False)``); the pairs of one query are adjacent.
            query_seq: ``[B, K]`` each query's behaviour codes (``None``: no sequence).
            rows: ``[N]`` each pair's query in ``[0, B)`` (its user and context inputs).
            items: ``[N]`` each pair's item (pairs of one item share its item inputs).

        The default hands each pair its query's sequence when the model reads it (the same
        values as a batch built with ``seq``); a two-tower embeds each query's user side
        and each item's side once instead.
        """
        if query_seq is not None and self.reads_sequence:
            batch = dataclasses.replace(batch, seq=query_seq.index_select(0, rows))
        return self.score(batch)


def fm_interaction(fields: Tensor) -> Tensor:
    """Second-order FM term ``[N]`` of field vectors ``[N, F, d]``."""
    square_of_sum = fields.sum(1).pow(2)
    sum_of_square = fields.pow(2).sum(1)
    return 0.5 * (square_of_sum - sum_of_square).sum(1)


def deep_tower(in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """``Linear → ReLU (→ Dropout)`` per hidden size; output width ``hidden[-1]``."""
    return nn.Sequential(*hidden_layers(in_dim, hidden, dropout))
