"""DeepFM: FM (first + second order) and an MLP sharing the same field embeddings."""

from __future__ import annotations

from torch import Tensor

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel, fm_interaction
from funnelrec.models.layers import mlp


class DeepFM(CTRModel):
    """``logit = linear + FM(fields) + MLP(flatten(fields))``, fields ``[N, F, d]``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        self.deep = mlp(self.n_fields * config.dim, config.hidden, 1, config.dropout)

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        deep: Tensor = self.deep(fields.flatten(1)).squeeze(-1)
        return linear + fm_interaction(fields) + deep
