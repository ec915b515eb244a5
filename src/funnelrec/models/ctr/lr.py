"""Logistic regression: the first-order term only (no feature crossing)."""

from __future__ import annotations

from torch import Tensor

from funnelrec.batch import Batch
from funnelrec.models.ctr.base import CTRModel


class LR(CTRModel):
    """``logit = b + Σ w_field`` (sparse weights, mean multi-valued weights, dense × w)."""

    def score(self, batch: Batch) -> Tensor:
        linear: Tensor = self.embed.first_order(batch)  # (no field vectors: LR has no use)
        return linear
