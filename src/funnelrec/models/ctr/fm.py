"""Factorisation machine: first-order term plus all pairwise field-vector inner products."""

from __future__ import annotations

from torch import Tensor

from funnelrec.batch import Batch
from funnelrec.models.ctr.base import CTRModel, fm_interaction


class FM(CTRModel):
    """``logit = linear + Σ_{i<j} <v_i, v_j>`` over fields ``[N, F, d]``."""

    def score(self, batch: Batch) -> Tensor:
        fields, linear = self.inputs(batch)
        return linear + fm_interaction(fields)
