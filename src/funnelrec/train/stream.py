"""Training batches from a Parquet log too large for memory, one chunk of users at a time.

``StreamingPairBatches`` is a ``train.loop`` batch function: each epoch visits the user chunks
of a ``ParquetInteractions`` in a seeded random order and yields ``PairBatches`` batches of the
chunk's shuffled pairs, so memory holds one chunk (about ``chunk_rows`` events) plus a batch.
Users are hashed into chunks, so every batch mixes unrelated users, as a global shuffle does.

Under ``torchrun`` (``train.distributed``) the chunks are per-rank shards: every rank draws
the same chunk order (seeded by ``seed`` and the epoch) and reads only chunks
``rank, rank + N, ...`` of it, so each process reads ``1/N`` of the log; ``rank_sharded`` tells
``train.loop.fit`` not to shard the batch stream again (``DDP.join`` absorbs unequal counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from funnelrec.data.ids import IdMap
from funnelrec.data.streaming import ParquetInteractions, id_table
from funnelrec.train import distributed
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
        seed: seed of the chunk order (with the epoch), the same on every rank.
    """

    rank_sharded = True  # train.loop.fit: this stream is already this rank's share

    source: ParquetInteractions
    item_ids: IdMap
    batch_size: int
    user_ids: IdMap | None = None
    max_history: int = 0
    history_mode: HistoryMode = "prefix"
    extra_sampler: NegativeSampler | None = None
    n_extra: int = 0
    seed: int = 0

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        n = self.source.n_chunks
        items = id_table(self.item_ids, self.source.item_col)
        users = None if self.user_ids is None else id_table(self.user_ids, self.source.user_col)
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        ctx = distributed.active()
        if ctx is not None:
            order = order[ctx.rank :: ctx.world_size]
        for part in order.tolist():
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
