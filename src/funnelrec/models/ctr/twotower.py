"""Light two-tower scorer for pre-ranking: ``<user vector, item vector>`` + first-order term.

The user vector sums the user-side and context field vectors and the mean of the recent
behaviours; the item vector sums the item-side field vectors; candidate-level fields
(recall provenance) enter through the first-order term only. No MLP: scoring ``C``
candidates costs one gather and one ``d``-wide dot product each.

At inference each distinct user side (a query's candidates share it) and each distinct item
side is embedded once and gathered back to its pairs, as a two-tower is served: the user
tower runs once per request, not once per candidate. The vectors are the same, bit for bit,
as embedding every pair (each row's sums do not depend on its batch mates). The ranker's
serving path (``score_queries``) hands the model each query's behaviours once and each pair's
query and item, so neither an ``[N, K]`` sequence block nor a comparison of the pairs' inputs
is needed to find the sides.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel

_USER_SIDE = ("user", "context")


class TwoTowerCTR(CTRModel):
    """``logit = linear + <Σ user-side fields (+ mean behaviour), Σ item-side fields>``."""

    user_mask: Tensor
    item_mask: Tensor

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        sources = schema.sources()
        self.register_buffer("user_mask", torch.tensor([s in _USER_SIDE for s in sources]))
        self.register_buffer("item_mask", torch.tensor([s == "item" for s in sources]))

    @property
    def reads_sequence(self) -> bool:
        return self.schema.seq_len > 0

    def score(self, batch: Batch) -> Tensor:
        user_cols, item_cols = self._side_columns()
        linear: Tensor
        if torch.is_grad_enabled():  # training: one lookup of every field (see below)
            fields: Tensor
            fields, linear = self.embed(batch)
            # index_select, not boolean indexing: same sums, about 6x faster on [N, F, d]
            user = fields.index_select(1, user_cols).sum(1)
            item = fields.index_select(1, item_cols).sum(1)
            if self.schema.seq_len > 0:
                user = user + self._mean_behaviour(batch)
        else:
            # inference looks up the two sides' fields alone (candidate-level fields enter
            # through the first-order term only), each distinct side once: the same values,
            # bit for bit. Training keeps the single lookup, whose backward sums differently
            # (the 1e-7 differences would move every recorded pre-rank row).
            linear = self.embed.first_order(batch)
            user = self._side_vectors(batch, user_cols, with_seq=True, order=None)
            item_order = self._item_order(batch)
            item = self._side_vectors(batch, item_cols, with_seq=False, order=item_order)
        return linear + (user * item).sum(-1)

    def score_queries(
        self, batch: Batch, query_seq: Tensor | None, rows: Tensor, items: Tensor
    ) -> Tensor:
        """``score`` of pairs keyed by query and item (see ``CTRModel``): at inference the
        user tower runs once per query on the query's own behaviours and the item tower once
        per item (no ``[N, K]`` sequence block, no comparison of pairs' inputs), with the
        same values, bit for bit, as ``score`` on a batch built with ``seq``."""
        if torch.is_grad_enabled() or len(batch) == 0:
            return super().score_queries(batch, query_seq, rows, items)
        user_cols, item_cols = self._side_columns()
        linear = self.embed.first_order(batch)
        first, by_query = _identical_runs([rows], None)  # a query's pairs are adjacent
        users = batch.take(first)
        if query_seq is not None and self.schema.seq_len > 0:
            users = dataclasses.replace(users, seq=query_seq.index_select(0, rows[first]))
        distinct, by_item = torch.unique(items, return_inverse=True)
        # one pair of each item (any: an item's pairs share its item-side inputs)
        first_of_item = torch.empty_like(distinct).scatter_(0, by_item, torch.arange(len(items)))
        user = self._side_sum(users, user_cols, with_seq=True).index_select(0, by_query)
        item = self._side_sum(batch.take(first_of_item), item_cols, with_seq=False)
        return linear + (user * item.index_select(0, by_item)).sum(-1)

    def _side_columns(self) -> tuple[Tensor, Tensor]:
        return self.user_mask.nonzero().ravel(), self.item_mask.nonzero().ravel()

    def _mean_behaviour(self, batch: Batch) -> Tensor:
        """``[N, d]`` mean embedding of the non-pad behaviours, without an ``[N, K, d]`` block."""
        total, count = self.embed.sequence_sum(batch)
        return total / count.unsqueeze(-1).clamp_min(1)

    def _item_order(self, batch: Batch) -> Tensor | None:
        """A stable order of the examples by item-id code (the same items side by side), or
        ``None`` (batch order) when the schema has no item-side item id."""
        f = self.schema.item_field
        if f is None or self.schema.sparse[f].source != "item":
            return None
        return torch.sort(batch.sparse[:, f], stable=True).indices

    def _side_vectors(
        self, batch: Batch, cols: Tensor, with_seq: bool, order: Tensor | None
    ) -> Tensor:
        """``[N, d]``: the sum of fields ``cols`` (plus the mean behaviour with ``with_seq``)
        of every example, computed once per group of identical inputs (examples adjacent in
        ``order``, default batch order, whose inputs to this side are equal) and gathered."""
        first, group = _identical_runs(self._side_inputs(batch, cols, with_seq), order)
        if len(first) == len(batch):  # every example is its own group: no gathers
            return self._side_sum(batch, cols, with_seq)
        return self._side_sum(batch.take(first), cols, with_seq).index_select(0, group)

    def _side_sum(self, batch: Batch, cols: Tensor, with_seq: bool) -> Tensor:
        """``[N, d]``: the sum of fields ``cols`` (plus the mean behaviour with ``with_seq``)."""
        vectors = self.embed.fields(batch, cols).sum(1)
        if with_seq and self.schema.seq_len > 0:
            vectors = vectors + self._mean_behaviour(batch)
        return vectors

    def _side_inputs(self, batch: Batch, cols: Tensor, with_seq: bool) -> list[Tensor]:
        """The input columns the fields ``cols`` (and the sequence) read, each ``[N, *]``."""
        s = self.schema
        sparse, multi, dense = s.split_fields(cols.tolist())
        inputs = [batch.sparse[:, sparse]] if sparse else []
        inputs += [batch.multi[j] for j in multi]
        if dense:  # compared as bits: equal floats only (NaN included)
            inputs.append(batch.dense[:, dense].contiguous().view(torch.int32))
        if with_seq and s.seq_len > 0 and batch.seq is not None:
            inputs.append(batch.seq)
        return inputs


def _identical_runs(inputs: list[Tensor], order: Tensor | None) -> tuple[Tensor, Tensor]:
    """Group the examples whose ``inputs`` rows are all equal and adjacent in ``order``.

    Args:
        inputs: tensors ``[N, *]`` compared row by row.
        order: a permutation ``[N]`` (``None``: ``0..N-1``).

    Returns:
        ``(first [R], group [N])``: one representative example per group (its first in
        ``order``) and each example's group in ``[0, R)``.
    """
    n = int(inputs[0].shape[0]) if inputs else 0
    if n <= 1:
        return torch.arange(n), torch.zeros(n, dtype=torch.long)
    ordered = inputs if order is None else [t.index_select(0, order) for t in inputs]
    starts = torch.ones(n, dtype=torch.bool)
    changed = starts[1:]  # a view: example i starts a group when any input differs from i-1
    changed.zero_()
    for t in ordered:
        differs = t[1:] != t[:-1]
        changed |= differs.flatten(1).any(1) if differs.dim() > 1 else differs
    run = starts.cumsum(0) - 1
    position = torch.arange(n) if order is None else order
    first = position[starts]
    group = run if order is None else torch.empty_like(run).index_copy_(0, order, run)
    return first, group
