"""Caser recall channel (next-item prediction with convolutions over the last L items);
training and request-time user vectors as in every sequence channel (``recall/_sequence.py``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.sequence import Caser
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.registry import RECALL


class CaserParams(SequenceParams):
    """``SequenceParams`` (``max_len`` = the convolution window L) plus filter counts."""

    max_len: int = Field(default=5, ge=1)
    n_h: int = Field(default=16, ge=1)
    n_v: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.3, ge=0, lt=1)


@RECALL.register("caser")
class CaserRecall(SequenceRecall[CaserParams]):
    """Caser: horizontal and vertical convolutions over the last L behaviours."""

    params_model = CaserParams
    layout = "last"
    example_params: ClassVar[dict[str, Any]] = {"dim": 16, "epochs": 2, "max_len": 4, "threads": 1}

    def _build_model(self) -> Caser:
        return self.build_encoder(Caser, "n_h", "n_v", "dropout")
