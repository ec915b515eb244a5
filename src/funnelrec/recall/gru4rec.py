"""GRU4Rec recall channel: a recurrent network reads the last ``max_len`` behaviours and is
trained by next-item prediction (training, validation, retrieval: ``recall/_sequence.py``)."""

from __future__ import annotations

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

    def _build_model(self) -> GRU4Rec:
        return self.build_encoder(GRU4Rec, "hidden", "layers", "dropout")
