"""MIND (Li et al., 2019): multi-interest extraction by behaviour-to-interest capsule routing.

Behaviours ``e_i`` are mapped by one shared bilinear matrix ``S`` to ``û_i = S e_i``; routing
logits ``b_ki`` start from a fixed random matrix (as in the paper), and for ``iterations``
rounds: ``w_ki = softmax_k(b_ki)``, ``z_k = Σ_i w_ki û_i``, ``v_k = squash(z_k)``,
``b_ki += v_k · û_i``. Each capsule then passes a ReLU layer. Output ``[B, K, d]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from funnelrec.models.sequence.base import SequenceEncoder, padding_mask


def squash(z: Tensor, eps: float = 1e-9) -> Tensor:
    """Capsule non-linearity ``|z|² / (1 + |z|²) · z / |z|`` over the last dimension."""
    sq = z.pow(2).sum(-1, keepdim=True)
    return sq / (1 + sq) * z / torch.sqrt(sq + eps)


class MIND(SequenceEncoder):
    """``n_interests`` capsules from the last ``max_len`` behaviours."""

    routing_init: Tensor

    def __init__(
        self,
        n_items: int,
        dim: int,
        max_len: int,
        *,
        n_interests: int = 4,
        iterations: int = 3,
        item_category: Tensor | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(n_items, dim, max_len, item_category, init_std)
        self.n_interests, self.iterations = n_interests, iterations
        self.bilinear = nn.Linear(dim, dim, bias=False)
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("routing_init", torch.randn(n_interests, max_len, generator=gen))
        self.head = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))

    def encode(self, seq: Tensor) -> Tensor:
        """``[B, K, d]`` interest capsules."""
        real = padding_mask(seq).unsqueeze(1)  # [B, 1, L]
        u_hat = self.bilinear(self.embed(seq))  # [B, L, d]
        logits = self.routing_init[:, -seq.shape[1] :].expand(seq.shape[0], -1, -1)
        fixed = u_hat.detach()
        caps = u_hat.new_zeros(seq.shape[0], self.n_interests, self.dim)
        for it in range(self.iterations):
            last = it == self.iterations - 1
            w = torch.softmax(logits, dim=1).masked_fill(~real, 0.0)  # over interests
            caps = squash(w @ (u_hat if last else fixed))  # [B, K, d]
            if not last:
                logits = logits + caps @ fixed.transpose(1, 2)
        out: Tensor = caps + self.head(caps)
        return out
