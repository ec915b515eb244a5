"""Sequence recall channels trained by next-item prediction: GRU4Rec, Caser, SASRec.

The user embedding is computed from the last ``max_len`` items of the query's history at
request time (real-time: new events change the result without retraining); items are
retrieved from the ANN index of the item embeddings (``index``: exact / hnsw / ivf).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from funnelrec.models.sequence import Caser, GRU4Rec, SASRec
from funnelrec.recall._sequence import SequenceParams, SequenceRecall
from funnelrec.registry import RECALL

_EXAMPLE: dict[str, Any] = {"dim": 16, "epochs": 2, "max_len": 10, "threads": 1}


class SASRecParams(SequenceParams):
    """``SequenceParams`` plus ``blocks`` Transformer blocks with ``heads`` heads."""

    blocks: int = Field(default=2, ge=1)
    heads: int = Field(default=1, ge=1)


@RECALL.register("sasrec")
class SASRecRecall(SequenceRecall[SASRecParams]):
    """SASRec: causal self-attention over the behaviour sequence."""

    params_model = SASRecParams
    example_params: ClassVar[dict[str, Any]] = _EXAMPLE

    def _build_model(self) -> SASRec:
        p = self.params
        return SASRec(
            self.sizes_["n_items"], p.dim, p.max_len, blocks=p.blocks, heads=p.heads,
            dropout=p.dropout, **self.model_kwargs(),
        )  # fmt: skip


class GRU4RecParams(SequenceParams):
    """``SequenceParams`` plus the GRU's ``hidden`` size and ``layers``."""

    hidden: int = Field(default=64, ge=1)
    layers: int = Field(default=1, ge=1)


@RECALL.register("gru4rec")
class GRU4RecRecall(SequenceRecall[GRU4RecParams]):
    """GRU4Rec: a recurrent network over the behaviour sequence."""

    params_model = GRU4RecParams
    example_params: ClassVar[dict[str, Any]] = _EXAMPLE

    def _build_model(self) -> GRU4Rec:
        p = self.params
        return GRU4Rec(
            self.sizes_["n_items"], p.dim, p.max_len, hidden=p.hidden, layers=p.layers,
            dropout=p.dropout, **self.model_kwargs(),
        )  # fmt: skip


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
    example_params: ClassVar[dict[str, Any]] = {**_EXAMPLE, "max_len": 4}

    def _build_model(self) -> Caser:
        p = self.params
        return Caser(
            self.sizes_["n_items"], p.dim, p.max_len, n_h=p.n_h, n_v=p.n_v, dropout=p.dropout,
            **self.model_kwargs(),
        )  # fmt: skip
