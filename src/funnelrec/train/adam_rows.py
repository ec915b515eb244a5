"""Lazy Adam's row update as one compiled pass over the touched rows (CPU).

Moving ``U`` rows of an ``[n, d]`` table with torch ops takes three ``index_select``s, a dozen
element-wise passes over ``[U, d]`` temporaries and three ``index_copy_``s; on a 1M-row table,
where a two-tower batch touches ~45k distinct rows at random, that was the largest share of a
step. ``update_rows`` visits each touched row of the weights and both moments once, reads and
writes it in place, and splits the rows over the threads torch is using
(``torch.get_num_threads``, so the one ``threads`` setting governs it too). Measured
(``benchmarks/scale.py --tasks train``, rows ending ``-torch-adam`` as the baseline): two-tower
training 1.13-1.14x faster at 200k-1M items.

The gradient comes as an embedding's sparse gradient does, ``(indices [N], values [N, d])``
with rows repeated. The compiled pass sums a row's values itself, in their order in the
gradient (a stable sort groups them), which is how ``index_add_`` into zeros sums them, so
the merged gradient is the same bit for bit without being built. Merging first
(``merged_rows``: a zero-filled ``[U, d]`` block, freshly mapped each step at that size, and
an ``index_add_``) made two-tower training 1.09-1.11x slower at 200k-1M items
(``benchmarks/scale.py --tasks train``, rows ending ``-premerged`` as the baseline).

The moments are ``m + w (g - m)`` (torch's ``lerp``) and the step ``w - s m / (sqrt(v) + eps)``
in the table's dtype; torch's vectorised ``lerp``/``add`` fuse a multiply-add and its
``sqrt`` is not always correctly rounded, so the values agree with ``LazyAdam``'s torch path
to float rounding (within an ulp or two per step), not bit for bit.
"""

from __future__ import annotations

import math
import threading
from functools import partial

import numba
import numpy as np
import torch
from torch import Tensor

from funnelrec.compiled import compiled

# numba's default OpenMP pool keeps its threads spinning after a launch, starving torch's
# own OpenMP pool on a small machine (small torch ops took milliseconds beside it); the work
# queue's threads sleep. It takes one launch at a time, hence the lock. A layer the user chose
# (NUMBA_THREADING_LAYER) is kept.
if numba.config.THREADING_LAYER == "default":  # type: ignore[attr-defined]
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]
_LAUNCH = threading.Lock()


def fused_supported(param: Tensor) -> bool:
    """Whether ``update_rows`` can move ``param``'s rows: a contiguous 2-D float32/float64
    table on the CPU (other devices use the torch ops)."""
    return (
        param.device.type == "cpu"
        and param.dim() == 2
        and param.dtype in (torch.float32, torch.float64)
        and param.is_contiguous()
    )


def merged_rows(grad: Tensor) -> tuple[Tensor, Tensor]:
    """A sparse ``[n, d]`` gradient as ``(rows [U], values [U, d])`` with distinct rows
    (duplicates summed by ``index_add_``, in their order), rows ascending."""
    indices, values = grad._indices()[0], grad._values()
    if grad.is_coalesced():
        return indices, values.clone()
    rows, inverse = torch.unique(indices, return_inverse=True)
    merged = values.new_zeros((len(rows), *values.shape[1:])).index_add_(0, inverse, values)
    return rows, merged


def update_rows(
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    grad: Tensor,
    betas: tuple[float, float],
    step_size: float,
    eps: float,
    fused: bool = True,
) -> None:
    """One lazy-Adam step, in place, for the rows in the sparse gradient ``grad`` of
    ``param`` (``exp_avg``, ``exp_avg_sq``: same ``[n, d]`` shape and dtype; repeated rows
    summed); ``step_size`` already carries the bias corrections. ``fused``: the compiled
    pass, which merges the repeated rows itself (needs ``fused_supported``), else torch ops
    on ``merged_rows`` (any device)."""
    if not fused:
        rows, merged = merged_rows(grad)
        # index_select / index_copy_: row copies, several times faster than [rows]
        avg = exp_avg.index_select(0, rows).lerp_(merged, 1 - betas[0])
        avg_sq = exp_avg_sq.index_select(0, rows).lerp_(merged.square_(), 1 - betas[1])
        exp_avg.index_copy_(0, rows, avg)
        exp_avg_sq.index_copy_(0, rows, avg_sq)
        update = avg.div_(avg_sq.sqrt_().add_(eps))
        # rows are distinct: gather, add, scatter back. The same values as
        # ``param.index_add_(0, rows, update, alpha=-step_size)`` (one fused
        # multiply-add per element either way), faster on a 1M-row table
        moved = param.index_select(0, rows).add_(update, alpha=-step_size)
        param.index_copy_(0, rows, moved)
        return
    indices, values = grad._indices()[0], grad._values()
    if len(indices) == 0:
        return
    if grad.is_coalesced():  # distinct rows, ascending: one value each
        ids, order = indices.numpy(), np.arange(len(indices), dtype=np.int64)
        runs = np.arange(len(indices) + 1, dtype=np.int64)
    else:  # a stable sort groups each row's values in their order in the gradient
        sorted_rows, order_t = torch.sort(indices, stable=True)
        ids, order = sorted_rows.numpy(), order_t.numpy()
        starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        runs = np.concatenate([[0], starts, [len(ids)]]).astype(np.int64)
    # row ids[runs[u]] sums values[order[runs[u]:runs[u + 1]]]
    dtype = param.detach().numpy().dtype.type
    with _LAUNCH:
        pool = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(max(1, min(torch.get_num_threads(), pool)))
        _adam_rows(
            param.detach().numpy(),
            exp_avg.numpy(),
            exp_avg_sq.numpy(),
            ids,
            order,
            runs,
            values.detach().to(param.dtype).contiguous().numpy(),
            dtype(1 - betas[0]),
            dtype(1 - betas[1]),
            dtype(step_size),
            dtype(eps),
        )


@partial(compiled, parallel=True)
def _adam_rows(
    weight: np.ndarray,
    avg: np.ndarray,
    avg_sq: np.ndarray,
    sorted_rows: np.ndarray,
    order: np.ndarray,
    runs: np.ndarray,
    values: np.ndarray,
    w1: np.floating,
    w2: np.floating,
    step_size: np.floating,
    eps: np.floating,
) -> None:  # pragma: no cover - compiled; covered through update_rows
    n_runs, d = runs.shape[0] - 1, weight.shape[1]
    n_chunks = min(n_runs, 64)  # each chunk of rows sums into its own [d] vector
    for c in numba.prange(n_chunks):
        g = np.empty(d, dtype=weight.dtype)
        for u in range(c * n_runs // n_chunks, (c + 1) * n_runs // n_chunks):
            lo, hi = runs[u], runs[u + 1]
            row = sorted_rows[lo]
            g[:] = 0  # index_add_ into zeros: 0 + v1 + v2 + ..., in the gradient's order
            for k in range(lo, hi):
                src = order[k]
                for j in range(d):
                    g[j] += values[src, j]
            for j in range(d):
                m = avg[row, j] + w1 * (g[j] - avg[row, j])
                v = avg_sq[row, j] + w2 * (g[j] * g[j] - avg_sq[row, j])
                avg[row, j] = m
                avg_sq[row, j] = v
                weight[row, j] -= step_size * (m / (math.sqrt(v) + eps))
