"""SASRec recall channel: causal self-attention over the last ``max_len`` behaviours, trained
by next-item prediction like every channel built on ``recall/_sequence.py``."""

from __future__ import annotations

from pydantic import Field

from funnelrec.models.sequence import SASRec
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.registry import RECALL


class SASRecParams(SequenceParams):
    """``SequenceParams`` plus ``blocks`` Transformer blocks with ``heads`` heads;
    ``fast_dropout``: dropout masks from a counter-based hash (``models.dropout``) instead of
    torch's per-element generator, 1.37-1.43x the training pairs per second on the CPU
    (``benchmarks/scale.py``, docs/guide/scaling.md; another random stream:
    not bit-identical to a default run with the same seed)."""

    blocks: int = Field(default=2, ge=1)
    heads: int = Field(default=1, ge=1)
    fast_dropout: bool = False


@RECALL.register("sasrec")
class SASRecRecall(SequenceRecall[SASRecParams]):
    """SASRec: causal self-attention over the behaviour sequence."""

    params_model = SASRecParams

    def _build_model(self) -> SASRec:
        return self.build_encoder(SASRec, "blocks", "heads", "dropout", "fast_dropout")
