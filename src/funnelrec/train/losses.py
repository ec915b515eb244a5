"""Training losses: pointwise BCE, pairwise BPR, sampled softmax with log-Q correction.

All losses take scores (logits) already computed by a model and return a scalar mean.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from funnelrec.models.layers import EmbeddingModel

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
"""Input dtypes of the sampled softmax's big ``[B, C]`` products. ``bfloat16`` runs them
faster on CPUs with AVX512-BF16 or AMX (and on GPUs), with float32 accumulation; the softmax,
the loss and the gradients of the towers stay float32. Elsewhere it is slower."""


def check_precision(precision: str) -> None:
    """Reject an unknown precision in one line."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")


def low_dtype(precision: str) -> torch.dtype | None:
    """The products' input dtype for ``precision``, ``None`` for float32 (checked first)."""
    check_precision(precision)
    return None if precision == "float32" else getattr(torch, precision)


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags (Linux), or ``None`` where they cannot be read."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def warn_if_emulated(precision: str, device: torch.device, flags: set[str] | None = None) -> None:
    """Warn when ``bfloat16`` products would run on a CPU without AVX512-BF16 or AMX: they
    are emulated there and slower than float32 (flags: ``cpu_flags()`` when not given)."""
    if precision != "bfloat16" or device.type != "cpu":
        return
    flags = cpu_flags() if flags is None else flags
    if flags is not None and not flags & {"avx512_bf16", "amx_bf16"}:
        warnings.warn(
            "precision='bfloat16' on a CPU without AVX512-BF16 or AMX: the products are "
            "emulated and slower than float32",
            stacklevel=2,
        )


def bce_loss(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy with logits, averaged.

    Args:
        logits: ``[...]`` raw scores.
        labels: ``[...]`` targets in ``[0, 1]`` (same shape).
        weight: optional per-element weights (same shape).
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), weight=weight)


def pointwise_bce(pos: Tensor, neg: Tensor) -> Tensor:
    """BCE over positives (label 1) and sampled negatives (label 0), averaged over all.

    Args:
        pos: ``[B]`` positive scores.
        neg: ``[B]`` or ``[B, N]`` negative scores.
    """
    logits = torch.cat([pos.reshape(-1), neg.reshape(-1)])
    labels = torch.cat([torch.ones_like(pos.reshape(-1)), torch.zeros_like(neg.reshape(-1))])
    return bce_loss(logits, labels)


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking: ``-mean log σ(pos - neg)``.

    Args:
        pos: ``[B]`` positive scores.
        neg: ``[B]`` or ``[B, N]`` negative scores (each paired with its row's positive).
    """
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    return -F.logsigmoid(pos - neg).mean()


def sampled_softmax_loss(
    user: Tensor,
    items: Tensor,
    item_ids: Tensor,
    log_q: Tensor | None = None,
    temperature: float = 1.0,
    target: Tensor | None = None,
    precision: Precision = "float32",
) -> Tensor:
    """Softmax over in-batch (and optional extra) candidate items, with log-Q correction.

    Logits are ``user @ items.T / temperature - log_q`` so that popular items, which appear
    more often as in-batch negatives, are not over-penalised (Yi et al., 2019). Without
    ``target``, row ``b``'s positive is column ``b`` and any other column holding the same item
    (an accidental hit) is masked out of that row; with ``target`` the columns must be
    distinct items.

    Args:
        user: ``[B, d]`` user vectors.
        items: ``[C, d]`` candidate item vectors (``C >= B`` without ``target``).
        item_ids: ``[C]`` item id of each candidate column.
        log_q: ``[C]`` log sampling probability (or expected count) of each column.
        temperature: logit divisor (smaller = sharper).
        target: ``[B]`` column of each row's positive.
        precision: dtype of the ``[B, C]`` product's inputs (``PRECISIONS``).
    """
    user = user * (1.0 / temperature)  # [B, d], not [B, C]: no extra pass over the logits
    low = low_dtype(precision)
    if low is not None:
        logits = (user.to(low) @ items.to(low).T).to(user.dtype)  # widened: a new tensor
        if log_q is not None:
            logits = logits.sub_(log_q.to(user.dtype))
    else:
        if log_q is not None:  # folded into the product: [user, 1] @ [items, -log_q].T
            user = torch.cat([user, user.new_ones(len(user), 1)], dim=1)
            items = torch.cat([items, -log_q.unsqueeze(1).to(items.dtype)], dim=1)
        logits = user @ items.T
    if target is None:
        target = torch.arange(user.shape[0], device=user.device)
        hit = item_ids.unsqueeze(0) == item_ids[: user.shape[0]].unsqueeze(1)
        hit[target, target] = False
        logits = logits.masked_fill(hit, float("-inf"))
    return F.cross_entropy(logits, target)


def shared_softmax_loss(
    user: Tensor,
    positives: Tensor,
    pos_ids: Tensor,
    shared: Tensor,
    shared_ids: Tensor,
    log_q_pos: Tensor | None = None,
    log_q_shared: Tensor | None = None,
    temperature: float = 1.0,
    precision: Precision = "float32",
) -> Tensor:
    """Softmax of each row's own positive against one shared set of negative columns.

    Row ``b`` scores its positive and the ``C`` shared candidates (e.g. a few hundred of the
    batch's positives plus sampled negatives); a shared column holding the row's own item is
    masked. The cost per row is ``O(C·d)`` whatever the batch size (the full in-batch softmax
    is ``O(B·d)`` per row).

    Args:
        user: ``[B, d]``; positives: ``[B, d]`` vectors of each row's positive, ids ``[B]``.
        shared: ``[C, d]`` shared candidate vectors, ids ``[C]`` (distinct).
        log_q_pos, log_q_shared: ``[B]`` / ``[C]`` log expected counts (log-Q correction).
        precision: dtype of the ``[B, C]`` products' inputs (``PRECISIONS``); the positives'
            scores, the softmax and the loss stay in ``user``'s dtype.
    """
    low = low_dtype(precision)
    user = user * (1.0 / temperature)
    pos = (user * positives).sum(-1)
    log_q = None
    if log_q_pos is not None and log_q_shared is not None:
        pos = pos - log_q_pos
        log_q = log_q_shared.to(shared.dtype)
    # a row's own item among the (distinct) shared columns: one searchsorted
    order = torch.argsort(shared_ids)
    at = torch.searchsorted(shared_ids[order], pos_ids).clamp_max(len(shared_ids) - 1)
    hit = shared_ids[order][at] == pos_ids
    rows, cols = torch.nonzero(hit).squeeze(1), order[at[hit]]
    reuse = torch.is_grad_enabled() and (user.requires_grad or shared.requires_grad)
    lse: Tensor = SharedLogSumExp.apply(user, shared, log_q, rows, cols, reuse, low)  # type: ignore[no-untyped-call]
    # -log softmax of column 0 of [pos | neg], without building the [B, 1 + C] logits
    return (torch.logaddexp(pos, lse) - pos).mean()


class LogitsWorkspace:
    """Reusable CPU buffers (one per dtype) for ``SharedLogSumExp``'s ``[B, C]`` logits.

    A fresh allocation of that size (tens of MB) every step is mapped and zero-filled by the
    OS again each time (glibc maps blocks above its mmap threshold, 32 MB at most, and
    returns them on free); on a VM that costs more than the GEMM that fills it. One buffer,
    checked out by a forward whose backward will run and handed back by that backward, makes
    each step's logits land in memory already mapped. Any other call (buffer in use, no
    gradient, another device) allocates as before; values are the same either way.

    A buffer grows to ``HEADROOM`` times the size asked for: ``C`` (distinct negatives) varies
    a little from step to step, and growing to each new maximum exactly mapped a fresh buffer
    at every record (a few times in the first dozen steps, each far dearer than the step's copy).
    """

    HEADROOM = 1.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[torch.dtype, Tensor] = {}
        self._busy: set[torch.dtype] = set()

    def take(self, rows: int, cols: int, like: Tensor) -> Tensor | None:
        """A ``[rows, cols]`` view of the buffer of ``like``'s dtype (grown as needed), or
        ``None`` if that one is in use."""
        with self._lock:
            if like.dtype in self._busy or like.device.type != "cpu":
                return None
            buf = self._buffers.get(like.dtype)
            if buf is None or buf.numel() < rows * cols:
                size = int(rows * cols * self.HEADROOM)
                buf = self._buffers[like.dtype] = torch.empty(size, dtype=like.dtype)
            self._busy.add(like.dtype)
            return buf[: rows * cols].view(rows, cols)

    def give_back(self, dtype: torch.dtype = torch.float32) -> None:
        """Mark the buffer of ``dtype`` free (its backward has run)."""
        with self._lock:
            self._busy.discard(dtype)

    def clear(self) -> None:
        """Drop the buffers (their memory goes back at once; end of training)."""
        with self._lock:
            self._buffers, self._busy = {}, set()


LOGITS_WORKSPACE = LogitsWorkspace()


class SharedLogSumExp(torch.autograd.Function):
    """``lse[b] = log Σ_c exp(user[b]·shared[c] - log_q[c])`` over the columns not masked by
    ``(rows, cols)``, fused: one ``[B, C]`` buffer holds the logits, then (in place, one fused
    softmax pass) their softmax, then the gradient of the logits, so a step makes one big
    allocation and four passes over it (``log_q``, row max, softmax, row max of the softmax)
    instead of a dozen (``logsumexp`` + autograd). The gradient is exact.

    ``lse = max_c logit - log max_c softmax``: the softmax is largest where the logit is, and
    there it equals ``exp(max - lse)``, so no separate ``exp``/``sum`` pass is needed.

    Args (forward):
        user: ``[B, d]``; shared: ``[C, d]``; log_q: ``[C]`` or ``None``.
        rows, cols: ``[M]`` masked cells (a row's own item among the shared columns).
        reuse: the buffer may be ``LOGITS_WORKSPACE`` (only when backward will run).
        low: ``None``, or a dtype (``torch.bfloat16``) for the three GEMMs' inputs: the
            products come out in it (accumulated in float32 by oneDNN/cuBLAS) and are widened
            back to ``user``'s dtype, in which the softmax and the gradients are kept.
    Returns ``[B]``. Backward runs once (the buffer is reused in place).
    """

    @staticmethod
    def forward(
        ctx: Any,
        user: Tensor,
        shared: Tensor,
        log_q: Tensor | None,
        rows: Tensor,
        cols: Tensor,
        reuse: bool = False,
        low: torch.dtype | None = None,
    ) -> Tensor:
        buffer = LOGITS_WORKSPACE.take(len(user), len(shared), user) if reuse else None
        ctx.workspace, ctx.dtype = buffer is not None, user.dtype
        # logits [B, C], contiguous (the in-place softmax below needs rows)
        if low is None:
            logits = user @ shared.T if buffer is None else torch.mm(user, shared.T, out=buffer)
        else:  # the product in ``low`` (its own buffer), widened into the float32 one
            user, shared = user.to(low), shared.to(low)
            narrow = LOGITS_WORKSPACE.take(len(user), len(shared), user) if reuse else None
            product = user @ shared.T if narrow is None else torch.mm(user, shared.T, out=narrow)
            logits = torch.empty_like(product, dtype=ctx.dtype) if buffer is None else buffer
            logits.copy_(product)
            if narrow is not None:
                LOGITS_WORKSPACE.give_back(low)
            del product
        if log_q is not None:
            logits.sub_(log_q)
        logits[rows, cols] = float("-inf")
        top = logits.amax(1)  # [B]
        # softmax over each row, written over the logits on CPU (its kernel reads a contiguous
        # row before writing it; tested against autograd); elsewhere into a new buffer
        if logits.device.type == "cpu":
            softmax: Tensor = torch.ops.aten._softmax.out(logits, 1, False, out=logits)
        else:
            softmax = torch.softmax(logits, 1)
        lse: Tensor = top - softmax.amax(1).log()
        dead = ~torch.isfinite(top)  # every column masked: lse = -inf, no gradient
        if bool(dead.any()):
            softmax[dead] = 0.0
            lse[dead] = float("-inf")
        ctx.save_for_backward(user, shared, softmax)
        return lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        user, shared, softmax = ctx.saved_tensors
        grad_logits = softmax.mul_(grad.unsqueeze(1))  # in place: backward runs once
        low = user.dtype if user.dtype != ctx.dtype else None
        narrow = None
        if low is not None:  # the low-precision GEMMs
            rows, cols = grad_logits.shape
            narrow = LOGITS_WORKSPACE.take(rows, cols, user) if ctx.workspace else None
            grad_logits = grad_logits.to(low) if narrow is None else narrow.copy_(grad_logits)
            if ctx.workspace:
                LOGITS_WORKSPACE.give_back(ctx.dtype)
        grad_user = grad_logits @ shared if ctx.needs_input_grad[0] else None
        grad_shared = grad_logits.T @ user if ctx.needs_input_grad[1] else None
        if low is None and ctx.workspace:
            LOGITS_WORKSPACE.give_back(ctx.dtype)
        elif low is not None and narrow is not None:
            LOGITS_WORKSPACE.give_back(low)
        if low is not None:
            grad_user = None if grad_user is None else grad_user.to(ctx.dtype)
            grad_shared = None if grad_shared is None else grad_shared.to(ctx.dtype)
        return grad_user, grad_shared, None, None, None, None, None


def mixture_log_q(
    item_ids: Tensor, batch_prob: Tensor, batch_size: int, extra_prob: Tensor | None, n_extra: int
) -> Tensor:
    """Log expected count of each candidate in a mixed candidate set.

    The candidates are ``batch_size`` in-batch positives drawn from ``batch_prob`` plus
    ``n_extra`` negatives drawn from ``extra_prob``; item ``j`` is expected
    ``batch_size·p_b(j) + n_extra·p_e(j)`` times.

    Args:
        item_ids: ``[C]`` candidate item ids.
        batch_prob: ``[n_items]`` probability of an item being a training positive.
        extra_prob: ``[n_items]`` probability of the extra-negative sampler (or ``None``).
    """
    expected = batch_size * batch_prob[item_ids]
    if extra_prob is not None and n_extra > 0:
        expected = expected + n_extra * extra_prob[item_ids]
    return torch.log(expected.clamp_min(1e-12))


def embedding_l2(*tensors: Tensor) -> Tensor:
    """Mean over the batch of the squared L2 norms of the given ``[B, d]`` embeddings."""
    total = sum(t.pow(2).sum() for t in tensors)
    return torch.as_tensor(total) / max(tensors[0].shape[0], 1)


class RetrievalLoss:
    """Loss closure for ``train.loop.fit`` over any ``EmbeddingModel``.

    ``kind``: ``bpr``/``bce`` score the batch's ``item`` against its ``neg`` ``[B, N]``;
    ``softmax`` scores each row against the batch's distinct items (its own positive, the other
    rows' positives and the shared ``extra`` negatives) or, with ``in_batch``, against its own
    positive plus the first ``in_batch`` rows' positives and ``extra`` (``shared_softmax_loss``:
    cost per row independent of the batch size), with
    log-Q correction from ``batch_prob`` ``[n_items]`` (probability of an item being a training
    positive) and ``extra_prob`` ``[n_items]``. Scores are divided by ``temperature``; ``l2``
    penalises the squared norms of the batch's user and item vectors. ``precision``: input
    dtype of the softmax's ``[B, C]`` products (``PRECISIONS``).
    """

    def __init__(
        self,
        kind: str,
        *,
        temperature: float = 1.0,
        l2: float = 0.0,
        batch_prob: Tensor | None = None,
        extra_prob: Tensor | None = None,
        in_batch: int | None = None,
        precision: Precision = "float32",
    ) -> None:
        if kind not in ("bpr", "bce", "softmax"):
            raise ValueError(f"unknown loss {kind!r}; known: bpr, bce, softmax")
        check_precision(precision)
        self.kind, self.temperature, self.l2, self.precision = kind, temperature, l2, precision
        self.batch_prob, self.extra_prob, self.in_batch = batch_prob, extra_prob, in_batch

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        if not isinstance(model, EmbeddingModel):
            raise TypeError(f"RetrievalLoss needs an EmbeddingModel, got {type(model).__name__}")
        user = model.user_vectors(batch)
        if self.kind == "softmax" and self.in_batch is not None and self.in_batch < len(user):
            out, items = self._shared(model, batch, user)
        elif self.kind == "softmax":
            extra = batch.get("extra")
            cand = batch["item"] if extra is None else torch.cat([batch["item"], extra])
            cand, inverse = torch.unique(cand, return_inverse=True)  # no accidental hits
            items = model.item_vectors(cand)
            log_q = None
            if self.batch_prob is not None:
                n_extra = 0 if extra is None else len(extra)
                log_q = mixture_log_q(cand, self.batch_prob, len(user), self.extra_prob, n_extra)
            target = inverse[: len(user)]
            out = sampled_softmax_loss(
                user, items, cand, log_q, self.temperature, target, self.precision
            )
        else:
            size, neg_ids = len(user), batch["neg"]
            items = model.item_vectors(torch.cat([batch["item"], neg_ids.reshape(-1)]))
            neg = items[size:].reshape(size, neg_ids.shape[1], -1)
            pos_s = (user * items[:size]).sum(-1) / self.temperature
            neg_s = torch.einsum("bd,bnd->bn", user, neg) / self.temperature
            out = bpr_loss(pos_s, neg_s) if self.kind == "bpr" else pointwise_bce(pos_s, neg_s)
        return out + self.l2 * embedding_l2(user, items) if self.l2 > 0 else out

    def _shared(
        self, model: EmbeddingModel, batch: Mapping[str, Tensor], user: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``shared_softmax_loss`` over the first ``in_batch`` positives and ``extra``."""
        assert self.in_batch is not None
        pos_ids, extra = batch["item"], batch.get("extra")
        head = pos_ids[: self.in_batch]
        cand = torch.unique(head if extra is None else torch.cat([head, extra]))
        items = model.item_vectors(torch.cat([pos_ids, cand]))
        q_pos = q_cand = None
        if self.batch_prob is not None:
            n_extra = 0 if extra is None else len(extra)
            log_q = mixture_log_q(
                torch.cat([pos_ids, cand]), self.batch_prob, len(head), self.extra_prob, n_extra
            )
            q_pos, q_cand = log_q[: len(pos_ids)], log_q[len(pos_ids) :]
        size = len(pos_ids)
        out = shared_softmax_loss(
            user, items[:size], pos_ids, items[size:], cand, q_pos, q_cand, self.temperature,
            self.precision,
        )  # fmt: skip
        return out, items


def listwise_softmax(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Softmax cross-entropy over each list (ListNet-style with a top-one target).

    ``-Σ_i y_i log softmax(s)_i / Σ_i y_i`` per list, averaged over lists with at least one
    positive.

    Args:
        logits: ``[B, L]`` scores.
        labels: ``[B, L]`` relevance ``>= 0``.
        mask: ``[B, L]`` true where a list has an item (padding is left out of the softmax).
    """
    log_p = torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=1)
    y = labels.to(logits.dtype) * mask
    total = y.sum(dim=1)
    has = total > 0
    per_list = -(y * log_p.masked_fill(~mask, 0.0)).sum(dim=1) / total.clamp_min(1e-12)
    return per_list[has].mean() if bool(has.any()) else logits.sum() * 0.0


def segment_listwise_softmax(
    logits: Tensor, labels: Tensor, segment: Tensor, per_list: bool = False
) -> Tensor:
    """``listwise_softmax`` over flat, segmented lists (no padding): each list's softmax
    over all its candidates, cross-entropy against its labels normalised to sum to one.

    Args:
        logits: ``[N]`` scores of every candidate of every list.
        labels: ``[N]`` relevance ``>= 0`` (lists without a positive are left out).
        segment: ``[N]`` list id of each candidate, ``0..L-1`` (any order).
        per_list: return the ``[L]`` per-list losses (``nan`` for lists without a positive)
            instead of their mean.
    """
    n_lists = int(segment.max().item()) + 1 if len(segment) else 0
    seg = segment.long()
    top = logits.new_full((n_lists,), float("-inf"))
    top = top.scatter_reduce(0, seg, logits.detach(), reduce="amax", include_self=True)
    shifted = logits - top[seg]
    lse = torch.log(logits.new_zeros(n_lists).index_add(0, seg, shifted.exp())) + top
    log_p = logits - lse[seg]
    y = labels.to(logits.dtype)
    total = logits.new_zeros(n_lists).index_add(0, seg, y)
    loss = -logits.new_zeros(n_lists).index_add(0, seg, y * log_p) / total.clamp_min(1e-12)
    has = total > 0
    if per_list:
        return loss.masked_fill(~has, float("nan"))
    return loss[has].mean() if bool(has.any()) else logits.sum() * 0.0
