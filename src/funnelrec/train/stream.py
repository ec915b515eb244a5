"""Training batches from a Parquet log too large for memory, one chunk of users at a time.

``StreamingPairBatches`` is a ``train.loop`` batch function: each epoch visits the user chunks
of a ``ParquetInteractions`` in a seeded random order and yields ``PairBatches`` batches of the
chunk's shuffled pairs, so memory holds one chunk (about ``chunk_rows`` events) plus a batch.
Users are hashed into chunks, so every batch mixes unrelated users, as a global shuffle does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from funnelrec.data.ids import IdMap
from funnelrec.data.streaming import ParquetInteractions, id_table
from funnelrec.train.data import HistoryMode, PairBatches
from funnelrec.train.negatives import NegativeSampler


@dataclass
class StreamingPairBatches:
    """``(epoch, rng) -> batches`` over ``source`` (see ``train.data.PairBatches``).

    Attributes:
        source: the Parquet log; ``source.chunk_rows`` bounds the events held at once.
        item_ids: item id map (dense ids of the model's item table).
        user_ids: user id map (``None``: ``user`` is ``-1`` in every batch: history-only models).
        batch_size, max_history, history_mode, extra_sampler, n_extra: as ``PairBatches``.
    """

    source: ParquetInteractions
    item_ids: IdMap
    batch_size: int
    user_ids: IdMap | None = None
    max_history: int = 0
    history_mode: HistoryMode = "prefix"
    extra_sampler: NegativeSampler | None = None
    n_extra: int = 0

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        n = self.source.n_chunks
        items = id_table(self.item_ids, self.source.item_col)
        users = None if self.user_ids is None else id_table(self.user_ids, self.source.user_col)
        for part in rng.permutation(n).tolist():
            chunk = self.source.chunk(part, n, items, users)
            if len(chunk) == 0:
                continue
            pairs = PairBatches(
                chunk.offsets, chunk.items, self.batch_size, max_history=self.max_history,
                history_mode=self.history_mode, extra_sampler=self.extra_sampler,
                n_extra=self.n_extra,
            )  # fmt: skip
            global_user = torch.from_numpy(chunk.users)
            for batch in pairs(epoch, rng):
                batch["user"] = global_user[batch["user"]]
                yield batch
