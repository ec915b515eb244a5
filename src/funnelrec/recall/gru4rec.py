"""GRU4Rec recall channel (next-item prediction with a recurrent network).

The user embedding is computed from the last ``max_len`` items of the query's history at
request time; items come from the ANN index of the item embeddings (``index``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.sequence import GRU4Rec
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.registry import RECALL


class GRU4RecParams(SequenceParams):
    """``SequenceParams`` plus the GRU's ``hidden`` size and ``layers``."""

    hidden: int = Field(default=64, ge=1)
    layers: int = Field(default=1, ge=1)


@RECALL.register("gru4rec")
class GRU4RecRecall(SequenceRecall[GRU4RecParams]):
    """GRU4Rec: a recurrent network over the behaviour sequence."""

    params_model = GRU4RecParams
    example_params: ClassVar[dict[str, Any]] = {"dim": 16, "epochs": 2, "max_len": 10, "threads": 1}

    def _build_model(self) -> GRU4Rec:
        p = self.params
        return GRU4Rec(
            self.sizes_["n_items"], p.dim, p.max_len, hidden=p.hidden, layers=p.layers,
            dropout=p.dropout, **self.model_kwargs(),
        )  # fmt: skip
