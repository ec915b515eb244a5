"""YouTube-DNN recall: the user vector is an MLP over the pooled recent history.

New events count at once: the query's own history (not a stored user id) makes the vector, so
a user unknown at training time but with a history is served; no history → empty row.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from funnelrec.models.youtube_dnn import YoutubeDNN
from funnelrec.ragged import BoolArray
from funnelrec.recall._embedding import EmbeddingParams, EmbeddingRecall
from funnelrec.registry import RECALL
from funnelrec.train.data import HistoryMode


class YoutubeDNNParams(EmbeddingParams):
    """``EmbeddingParams`` (default loss: in-batch sampled softmax with log-Q) plus:

    ``hidden``: MLP sizes; ``max_history``: latest items pooled; ``history_mode``: training
    histories are the items before each target (``prefix``) or all others (``others``);
    ``recent``: also pool the last ``recent`` items apart; ``user_columns``: user-table
    attributes (``None``: auto); ``normalize``: L2-normalise both sides (use a temperature).
    """

    loss: Literal["bpr", "bce", "softmax"] = "softmax"
    hidden: tuple[int, ...] = (128,)
    max_history: int = Field(default=50, ge=1)
    history_mode: HistoryMode = "prefix"
    recent: int = Field(default=0, ge=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    normalize: bool = False
    user_columns: list[str] | None = None


@RECALL.register("youtube_dnn")
class YoutubeDNNRecall(EmbeddingRecall[YoutubeDNNParams]):
    """History-pooling user tower + item output embeddings, trained by sampled softmax."""

    params_model = YoutubeDNNParams
    example_params: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 2,
        "hidden": [16],
        "threads": 1,
    }

    def _build_model(self) -> YoutubeDNN:
        p = self.params
        return YoutubeDNN(
            self.sizes_["n_items"], p.dim, p.hidden, tuple(self.sizes_["user_cards"]),
            recent=p.recent, dropout=p.dropout, normalize=p.normalize, init_std=p.init_std,
        )  # fmt: skip

    def _history(self) -> tuple[int, HistoryMode]:
        return self.params.max_history, self.params.history_mode

    def _user_columns(self) -> list[str] | None:
        return self.params.user_columns

    def _active(self, known: BoolArray, has_history: BoolArray) -> BoolArray:
        has_attrs = self.user_feats_.shape[1] > 0
        return np.asarray(has_history | (known & has_attrs), dtype=np.bool_)
