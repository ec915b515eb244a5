"""Counter-based dropout: each mask from a hash of (one key per call, element index).

``torch.nn.Dropout`` on the CPU draws a Bernoulli variable per element from torch's
Mersenne-Twister generator, one element at a time, then divides and multiplies in two more
passes: with nine calls a step, that was the largest share of a SASRec training step. Here a
call draws a single 64-bit key from torch's generator (so ``torch.manual_seed`` still fixes
every mask), and one compiled pass writes
``x * keep / (1 - p)``, where element ``i`` is kept when the top 24 bits of
``splitmix64(key + (i + 1) * golden)`` are at least ``round(p * 2^24)``: a counter-based
generator, as GPUs draw their dropout masks (Philox there). The backward pass rebuilds the same
mask from the key instead of storing it. SASRec trains 1.37-1.43x faster with these masks
(``benchmarks/scale.py --tasks train``, rows ending ``-fastdrop``; docs/guide/scaling.md).

The masks differ from ``nn.Dropout``'s for the same seed (another generator), so a model
trained with them is not bit-identical to one trained with torch's masks; the drop rate
and the scaling are the same (``p`` to 2^-24). CPU float32/float64 tensors take the compiled
pass; other devices and dtypes fall back to ``torch.nn.functional.dropout``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec.compiled import compiled

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BITS = 24  # resolution of the drop probability


@compiled
def _masked_scale(
    x: np.ndarray, out: np.ndarray, key: np.uint64, threshold: np.uint64, scale: np.floating
) -> None:  # pragma: no cover - compiled; covered through counter_dropout
    zero = x.dtype.type(0)
    for i in range(x.shape[0]):
        z = key + np.uint64(i + 1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        out[i] = x[i] * scale if (z >> np.uint64(64 - _BITS)) >= threshold else zero


def supported(x: Tensor) -> bool:
    """Whether ``x`` takes the compiled pass (a CPU float32/float64 tensor)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _apply_mask(x: Tensor, key: int, p: float) -> Tensor:
    """``x`` with the elements the mask of ``key`` drops zeroed, the rest scaled by
    ``1 / (1 - p)`` (a new tensor, same shape)."""
    x = x.detach().contiguous()
    out = torch.empty_like(x)
    flat = x.view(-1).numpy()
    threshold = np.uint64(round(p * (1 << _BITS)))
    scale = flat.dtype.type(1 / (1 - p))
    _masked_scale(flat, out.view(-1).numpy(), np.uint64(key), threshold, scale)
    return out


class _CounterDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, key: int) -> Tensor:
        ctx.p, ctx.key = p, key
        return _apply_mask(x, key, p)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return _apply_mask(grad, ctx.key, ctx.p), None, None


def counter_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout of ``x`` (any shape) with drop probability ``p`` in ``[0, 1)``: counter-based
    masks where ``supported(x)``, ``F.dropout`` otherwise; ``x`` itself when not
    ``training`` or ``p == 0``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if not supported(x):
        return F.dropout(x, p, training=True)
    key = int(torch.randint(0, 2**62, (1,)).item())  # one draw: the seed fixes every mask
    out: Tensor = _CounterDropout.apply(x, p, key)  # type: ignore[no-untyped-call]
    return out


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose masks are counter-based when ``counter`` (see the module)."""

    def __init__(self, p: float = 0.5, counter: bool = False) -> None:
        super().__init__(p)
        self.counter = counter

    def forward(self, x: Tensor) -> Tensor:
        if not self.counter:
            return super().forward(x)
        return counter_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, counter={self.counter}"
