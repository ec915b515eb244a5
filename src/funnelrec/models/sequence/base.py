"""Base of the behaviour-sequence encoders: item table (+ side information), padding, output.

Sequences are ``[B, L]`` int64 tensors of ``item + 1`` (``0`` = padding), *left*-padded so
the most recent behaviour is always the last column. ``encode`` returns per-position outputs
``[B, L, d]`` for causal models (GRU4Rec, SASRec: position ``t`` has seen items ``<= t``), one
vector ``[B, d]`` for window models (Caser) or ``[B, K, d]`` interests (MIND, ComiRec-SA).
Items share one table for input and output; a category embedding can be added to both.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from funnelrec.models.layers import EmbeddingModel, init_embeddings
from funnelrec.row_padding import batch_invariant


def left_pad(items: Tensor, offsets: Tensor, max_len: int, full: bool = False) -> Tensor:
    """Ragged histories → ``[B, L]`` of ``item + 1``, last ``max_len`` items right-aligned.

    Args:
        items: ``[H]`` flat items, oldest first within each row.
        offsets: ``[B]`` start of each row in ``items``.
        max_len: most recent items kept; ``L = min(max_len, longest row)`` (at least 1).
        full: ``L = max_len`` whatever the rows, so a row's padding (and its encoder's
            arithmetic) does not depend on the longest history among its batch mates.
    """
    ends = torch.cat([offsets[1:], offsets.new_tensor([items.shape[0]])])
    lens = ends - offsets
    longest = int(lens.max()) if len(lens) else 1
    width = max_len if full else max(1, min(max_len, longest))
    out = torch.zeros(len(offsets), width, dtype=torch.long, device=items.device)
    row = torch.repeat_interleave(torch.arange(len(offsets), device=items.device), lens)
    from_end = ends[row] - torch.arange(items.shape[0], device=items.device) - 1
    keep = from_end < width
    out[row[keep], width - 1 - from_end[keep]] = items[keep] + 1
    return out


class SequenceEncoder(EmbeddingModel):
    """Item embeddings (+ category embedding) and the history → user vector(s) plumbing.

    Args:
        n_items: catalogue size.
        dim: embedding size.
        max_len: most recent behaviours used (K).
        item_category: ``[n_items]`` category code per item (``-1``: none) or ``None``.
        init_std: normal init of the tables.
    """

    causal: ClassVar[bool] = False
    item_category: Tensor

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.dim, self.max_len, self.init_std = dim, max_len, init_std
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.categories: nn.Embedding | None = None
        codes = torch.zeros(n_items + 1, dtype=torch.long)
        if item_category is not None:
            codes[1:] = item_category.long() + 1
            self.categories = nn.Embedding(int(codes.max()) + 1, dim, padding_idx=0)
        self.register_buffer("item_category", codes, persistent=True)
        init_embeddings(self, init_std)

    def embed(self, seq: Tensor) -> Tensor:
        """``[..., d]`` representations of ``item + 1`` codes (zeros for padding)."""
        out: Tensor = self.items(seq)
        if self.categories is not None:
            out = out + self.categories(self.item_category[seq])
        return out

    def item_vectors(self, items: Tensor) -> Tensor:
        return self.embed(items + 1)

    @abc.abstractmethod
    def encode(self, seq: Tensor) -> Tensor:
        """``[B, L, d]`` (causal), ``[B, d]`` or ``[B, K, d]`` from ``seq`` ``[B, L]``."""
        raise NotImplementedError

    def user_vectors(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``[B, d]`` (or ``[B, K, d]``) from ``hist_items`` ``[H]`` / ``hist_offsets`` ``[B]``.

        Without gradients (inference) every row is padded to ``max_len`` and the rows to a
        multiple of ``row_padding.ROW_MULTIPLE``, so a user's vector is bit-identical alone
        and in any batch (the encoders' products see the same shapes)."""
        inference = not torch.is_grad_enabled()
        seq = left_pad(batch["hist_items"], batch["hist_offsets"], self.max_len, full=inference)
        out = batch_invariant(self.encode, seq)
        return out[:, -1] if self.causal else out

    def train_vectors(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Training outputs and their next-item targets.

        ``seq`` ``[B, L]`` with ``target`` ``[B, L]`` (causal, ``-1`` = no target) or ``[B]``.

        Returns:
            ``([N, d] or [N, K, d], [N])``.
        """
        out, target = self.encode(batch["seq"]), batch["target"]
        if target.dim() == 2:
            mask = target >= 0
            return out[mask], target[mask]
        return out, target


class RecencyPositions(nn.Embedding):
    """Position embeddings counted back from the most recent behaviour (``0`` = the latest),
    so left padding never shifts them; positions past ``max_len - 1`` share the last row.

    Args:
        max_len: positions with a row of their own.
        dim: embedding size.
        init_std: normal init of the table.
    """

    def __init__(self, max_len: int, dim: int, init_std: float) -> None:
        super().__init__(max_len, dim)
        nn.init.normal_(self.weight, 0.0, init_std)

    def forward(self, seq: Tensor) -> Tensor:
        """``[L, d]`` embeddings of the columns of ``seq`` ``[B, L]`` (the last is position 0)."""
        n = seq.shape[1]
        pos = torch.arange(n - 1, -1, -1, device=seq.device).clamp(max=self.num_embeddings - 1)
        out: Tensor = super().forward(pos)
        return out


def padding_mask(seq: Tensor) -> Tensor:
    """``[B, L]`` True where ``seq`` holds an item."""
    return seq > 0
