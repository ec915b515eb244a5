"""Training a CTR model on a labelled ``Batch`` through the one loop (``train.loop.fit``).

Losses: ``bce`` (pointwise, labels may be soft, e.g. distillation targets), ``bpr``
(pairwise), ``softmax`` (sampled: each positive against ``n_neg`` negatives of its own
query, cross-entropy over the ``1 + n_neg`` scores) and ``listwise`` (one softmax over
*every* candidate of a query, cross-entropy against its labels normalised per list; batches
of whole lists, ``train.listwise``). The pairwise/sampled negatives are drawn from the same
query's candidates (``batch.group``), so they are exposure-consistent. Early stopping
watches AUC (or GAUC over queries when the batch has groups) on ``valid``; with
``listwise``, NDCG@10 of ``valid``'s lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.batch import Batch
from funnelrec.eval import metrics
from funnelrec.models.ctr.base import CTRModel
from funnelrec.ragged import FloatArray, IntArray
from funnelrec.train.listwise import ListBatches, list_ndcg
from funnelrec.train.loop import FitResult, Optimizer, fit, resolve_device
from funnelrec.train.losses import bce_loss, bpr_loss, segment_listwise_softmax

Loss = Literal["bce", "bpr", "softmax", "listwise"]


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one CTR training run (see ``train.loop.fit``)."""

    loss: Loss = "bce"
    n_neg: int = 4
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Optimizer = "adam"
    patience: int = 2
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    progress: bool | None = None


class RowBatches:
    """Shuffled mini-batches of rows (pointwise losses)."""

    def __init__(self, data: Batch, batch_size: int) -> None:
        self.data, self.batch_size = data, batch_size

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        order = torch.from_numpy(rng.permutation(len(self.data)))
        for lo in range(0, len(order), self.batch_size):
            yield self.data.take(order[lo : lo + self.batch_size]).as_dict()


class GroupBatches:
    """Mini-batches of positives, each followed by ``n_neg`` negatives of its own query:
    rows ``[P positives, P·n_neg negatives]`` (pairwise and listwise losses). One epoch
    visits about as many rows as a pointwise epoch (positives are repeated as needed)."""

    def __init__(self, data: Batch, batch_size: int, n_neg: int) -> None:
        assert data.label is not None and data.group is not None
        self.data, self.n_neg = data, n_neg
        self.size = max(batch_size // (1 + n_neg), 1)
        label, group = data.label.numpy() > 0.5, data.group.numpy()
        self.pos = np.flatnonzero(label)
        neg = np.flatnonzero(~label)
        neg = neg[np.argsort(group[neg], kind="stable")]
        counts = np.bincount(group[neg], minlength=int(group.max(initial=0)) + 1)
        self.neg, self.neg_off = neg, ragged.offsets_from_lengths(counts)
        self.pos_group = group[self.pos]
        if len(self.pos) == 0 or len(neg) == 0:
            raise ValueError("pairwise/listwise losses need positive and negative examples")

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        repeats = max(round(len(self.data) / (len(self.pos) * (1 + self.n_neg))), 1)
        order = np.concatenate([rng.permutation(len(self.pos)) for _ in range(repeats)])
        for lo in range(0, len(order), self.size):
            pick = order[lo : lo + self.size]
            g = np.repeat(self.pos_group[pick], self.n_neg)
            start, count = self.neg_off[g], self.neg_off[g + 1] - self.neg_off[g]
            within = (rng.random(len(g)) * count).astype(np.int64)
            fallback = rng.integers(0, len(self.neg), len(g))
            neg = np.where(count > 0, self.neg[np.minimum(start + within, len(self.neg) - 1)],
                           self.neg[fallback])  # fmt: skip
            rows = np.concatenate([self.pos[pick], neg])
            yield self.data.take(torch.from_numpy(rows)).as_dict()


class CTRLoss:
    """Loss closure for ``train.loop.fit`` (``bce`` on rows; ``bpr``/``softmax`` on
    ``GroupBatches``; ``listwise`` on ``ListBatches``)."""

    def __init__(self, kind: Loss, n_neg: int) -> None:
        self.kind, self.n_neg = kind, n_neg

    def __call__(self, model: nn.Module, data: Mapping[str, Tensor]) -> Tensor:
        logits: Tensor = model(data)
        if self.kind == "bce":
            return bce_loss(logits, data["label"])
        if self.kind == "listwise":
            return segment_listwise_softmax(logits, data["label"], data["group"])
        p = len(logits) // (1 + self.n_neg)
        pos, neg = logits[:p], logits[p:].view(p, self.n_neg)
        if self.kind == "bpr":
            return bpr_loss(pos, neg)
        both = torch.cat([pos.unsqueeze(1), neg], dim=1)
        return F.cross_entropy(both, torch.zeros(p, dtype=torch.long, device=both.device))


def predict(model: nn.Module, data: Batch, chunk: int = 65_536) -> FloatArray:
    """Logits ``[N]`` in eval mode without gradients, on the model's device."""
    return _chunked(model, len(data), chunk, lambda lo, hi, to: model(data.slice(lo, hi).to(to)))


def predict_queries(
    model: CTRModel,
    data: Batch,
    query_seq: Tensor | None,
    rows: Tensor,
    items: Tensor,
    chunk: int = 65_536,
) -> FloatArray:
    """``predict`` of (query, candidate) pairs built without ``seq``: ``query_seq`` ``[B, K]``
    each query's behaviours, ``rows``/``items`` ``[N]`` each pair's query and item
    (``CTRModel.score_queries``)."""

    def part(lo: int, hi: int, to: torch.device) -> Tensor:
        seq = None if query_seq is None else query_seq.to(to)
        pairs, keys = data.slice(lo, hi).to(to), (rows[lo:hi].to(to), items[lo:hi].to(to))
        return model.score_queries(pairs, seq, *keys)

    return _chunked(model, len(data), chunk, part)


def _chunked(
    model: nn.Module, n: int, chunk: int, logits: Callable[[int, int, torch.device], Tensor]
) -> FloatArray:
    """``logits(lo, hi, device)`` of every chunk of ``[0, n)``, in eval mode, no gradients
    (inputs are sliced as views: no copy)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        out = [logits(lo, min(lo + chunk, n), device).float().cpu().numpy()
               for lo in range(0, n, chunk)]  # fmt: skip
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def has_both_classes(data: Batch) -> bool:
    """Whether ``data`` has labelled positives and negatives (AUC is defined)."""
    if data.label is None:
        return False
    y = data.label.numpy() > 0.5
    return bool(y.any() and not y.all())


def score_auc(labels: FloatArray, logits: FloatArray, groups: IntArray | None) -> float:
    """GAUC over ``groups`` when given and defined, else AUC."""
    y = labels > 0.5
    if groups is not None:
        try:
            return metrics.gauc(y, logits, groups)
        except ValueError:
            pass
    return metrics.auc(y, logits)


def train_model(model: nn.Module, train: Batch, valid: Batch | None, s: TrainSettings) -> FitResult:
    """Fit ``model`` on ``train`` (labels, and groups for ``bpr``/``softmax``/``listwise``);
    early-stop on ``valid`` (GAUC when it has groups, else AUC; NDCG@10 of its lists with
    ``listwise``) when it has both classes."""
    batches: RowBatches | GroupBatches | ListBatches = (
        RowBatches(train, s.batch_size)
        if s.loss == "bce"
        else ListBatches(train, s.batch_size)
        if s.loss == "listwise"
        else GroupBatches(train, s.batch_size, s.n_neg)
    )
    validate = None
    if valid is not None and has_both_classes(valid):
        assert valid.label is not None
        labels = valid.label.numpy()
        groups = None if valid.group is None else valid.group.numpy()

        def validate(m: nn.Module) -> float:
            if s.loss == "listwise" and groups is not None:
                return list_ndcg(labels, predict(m, valid), groups, k=10)
            return score_auc(labels, predict(m, valid), groups)

    model.to(resolve_device(s.device))
    return fit(
        model, batches, CTRLoss(s.loss, s.n_neg),
        epochs=s.epochs, lr=s.lr, weight_decay=s.weight_decay, optimizer=s.optimizer,
        seed=s.seed, device=s.device, validate=validate, patience=s.patience,
        progress=s.progress, num_threads=s.threads,
    )  # fmt: skip
