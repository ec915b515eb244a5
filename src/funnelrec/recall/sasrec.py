"""SASRec recall channel (next-item prediction with causal self-attention).

The user embedding is computed from the last ``max_len`` items of the query's history at
request time; items come from the ANN index of the item embeddings (``index``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.sequence import SASRec
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.registry import RECALL


class SASRecParams(SequenceParams):
    """``SequenceParams`` plus ``blocks`` Transformer blocks with ``heads`` heads."""

    blocks: int = Field(default=2, ge=1)
    heads: int = Field(default=1, ge=1)


@RECALL.register("sasrec")
class SASRecRecall(SequenceRecall[SASRecParams]):
    """SASRec: causal self-attention over the behaviour sequence."""

    params_model = SASRecParams
    example_params: ClassVar[dict[str, Any]] = {"dim": 16, "epochs": 2, "max_len": 10, "threads": 1}

    def _build_model(self) -> SASRec:
        p = self.params
        return SASRec(
            self.sizes_["n_items"], p.dim, p.max_len, blocks=p.blocks, heads=p.heads,
            dropout=p.dropout, **self.model_kwargs(),
        )  # fmt: skip
