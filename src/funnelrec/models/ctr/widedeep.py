"""Wide & Deep: the linear (wide) term plus an MLP over the concatenated field vectors."""

from __future__ import annotations

from torch import Tensor

from funnelrec.batch import Batch, Schema
from funnelrec.models.ctr.base import CTRConfig, CTRModel
from funnelrec.models.layers import mlp


class WideDeep(CTRModel):
    """``logit = linear + MLP(flatten(fields [N, F, d]))``."""

    def __init__(self, schema: Schema, config: CTRConfig) -> None:
        super().__init__(schema, config)
        self.deep = mlp(self.n_fields * config.dim, config.hidden, 1, config.dropout)

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        deep: Tensor = self.deep(fields.flatten(1)).squeeze(-1)
        return linear + deep
