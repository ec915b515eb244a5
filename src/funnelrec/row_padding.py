"""Row padding that keeps a row's float results independent of its batch mates.

MKL's sgemm takes other kernels for products of a handful of rows (a single request, or a few
rows per thread), whose sums round differently, so the same row could score differently alone
and in a batch. From 8 rows up, at 1-8 threads, every row of a product whose row count is a
multiple of ``ROW_MULTIPLE`` is bit-identical whatever the other rows (checked over dims 7-128
and catalogues of 1.7k-300k items; ``tests/index`` and ``tests/models`` hold the invariance
tests). Exact vector search and the inference passes of the towers and sequence encoders pad
their rows to such a multiple; training never pads (its batches are what they are).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ROW_MULTIPLE = 16


def padded_rows(n: int) -> int:
    """``n`` rows rounded up to a positive multiple of ``ROW_MULTIPLE``."""
    return max(ROW_MULTIPLE, -(-n // ROW_MULTIPLE) * ROW_MULTIPLE)


def repeat_first_row(x: Tensor, rows: int) -> Tensor:
    """``x`` ``[n, ...]`` with copies of its first row appended up to ``rows`` rows (``x``
    itself when it already has them; copies of a real row keep every op well defined)."""
    extra = rows - x.shape[0]
    if extra <= 0 or x.shape[0] == 0:
        return x
    return torch.cat([x, x[:1].expand(extra, *x.shape[1:])])


def batch_invariant(fn: Callable[..., Tensor], *inputs: Tensor) -> Tensor:
    """``fn(*inputs)`` ``[n, ...]`` for inputs of ``n`` rows each, computed on rows padded to
    ``padded_rows(n)`` when no gradient is recorded (inference), so each output row is
    bit-identical in any batch; with gradients on, ``fn`` runs on the inputs as they are."""
    n = inputs[0].shape[0]
    if torch.is_grad_enabled() or n == 0 or n % ROW_MULTIPLE == 0:
        return fn(*inputs)
    rows = padded_rows(n)
    return fn(*(repeat_first_row(x, rows) for x in inputs))[:n]
