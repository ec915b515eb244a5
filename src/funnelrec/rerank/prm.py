"""``prm``: learned listwise re-ranker (PRM-style Transformer over the ranked list).

Training data are lists the funnel itself produced: inside a funnel, ``lists`` runs recall,
pre-rank, rank and the re-rankers before this one. With a validation part (``Funnel.fit(...,
valid=...)``) the queries are its users with their training history and the labels their
validation items, which no earlier stage was fitted on; without one, each user's last
training interaction is held out as the label and the history stops before it. Outside a
funnel (``fit(dataset)`` alone) a popularity list stands in for the funnel's lists. Lists
with no positive are skipped; a share of the lists is kept aside for early stopping on
NDCG@10. Training runs through ``train.loop.fit`` with the listwise softmax loss.

At request time the first ``max_len`` items of each row are re-scored and sorted by the
model's score (the rest keep their order after them); the new score is recorded as
``stage_scores["prm"]``. Business rules (scatter, slots, ...) placed after ``prm`` in the
chain still hold exactly in the output, since they run on its order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field
from torch import Tensor, nn

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.io import read_json, write_json
from funnelrec.models.prm import PRM
from funnelrec.ragged import IntArray
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import RERANK
from funnelrec.rerank._items import pad, spread, take_order
from funnelrec.rerank.base import ListsFn, Reranker
from funnelrec.stage import Params
from funnelrec.train.examples import prefix_queries, retrieve_all
from funnelrec.train.loop import fit, seeded
from funnelrec.train.losses import listwise_softmax
from funnelrec.types import Candidates, Query

_NOT_JSON = ("model_",)
_CHUNK = 1024


class PRMParams(Params):
    """Parameters of ``prm``: model size (``dim``, ``heads``, ``layers``, ``dropout``), the
    list length it re-scores (``max_len``), the user history length (``hist_len``), tags per
    item (``max_tags``), training (``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``patience``, ``holdout_share`` of lists for early stopping, ``max_lists``), ``seed``,
    ``threads`` and ``device``."""

    dim: int = Field(default=32, ge=2)
    heads: int = Field(default=2, ge=1)
    layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_len: int = Field(default=50, ge=2)
    hist_len: int = Field(default=50, ge=1)
    max_tags: int = Field(default=8, ge=1)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    patience: int = Field(default=3, ge=1)
    holdout_share: float = Field(default=0.15, gt=0.0, lt=1.0)
    max_lists: int = Field(default=50_000, ge=10)
    seed: int = 0
    threads: int | None = Field(default=None, ge=1)
    device: str = "cpu"


@RERANK.register("prm")
class PRMReranker(Reranker[PRMParams]):
    """Transformer re-scoring of the incoming list (see module doc)."""

    params_model = PRMParams
    example_params: ClassVar[dict[str, Any]] = {"epochs": 2, "dim": 8, "threads": 1}

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        if ctx is not None and ctx.refit and self.is_fitted:  # item upserts: unknown items
            return self
        if ctx is None or ctx.lists is None:
            popular = PopularRecall().fit(dataset)
            return self._fit(dataset, lambda q: popular.retrieve(q, self.params.max_len), None)
        return self._fit(dataset, ctx.lists, ctx.valid)

    def fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().fitted_state().items() if k not in _NOT_JSON}

    # -- training -------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, lists: ListsFn, valid: Dataset | None) -> Self:
        p = self.params
        self.n_items_ = dataset.n_items
        self.tag_codes_ = _tag_codes(dataset, p.max_tags)
        query, t_off, t_items = _training_queries(dataset, valid, p.max_lists, p.seed)
        cands = retrieve_all(lists, query)
        self.score_names_ = sorted(cands.stage_scores)
        batch = self._encode(query, cands)
        labels = ragged.membership(cands.offsets, cands.item_idx, t_off, t_items)
        batch["labels"] = torch.from_numpy(spread(pad(cands), labels, False)[:, : p.max_len])
        with seeded(p.seed):  # initialisation from the seed, not from torch's global state
            self.model_ = self._new_model()
        if len(batch["labels"]) == 0 or not bool(batch["labels"].any()):
            self.model_.eval()  # nothing to learn from: the linear score path keeps the order
            return self
        self._train(batch)
        return self

    def _new_model(self) -> PRM:
        p = self.params
        return PRM(
            self.n_items_,
            int(self.tag_codes_.max(initial=0)),
            2 * (1 + len(self.score_names_)),
            p.max_len,
            p.dim,
            p.heads,
            p.layers,
            p.dropout,
        )

    def _train(self, data: dict[str, Tensor]) -> None:
        p = self.params
        has_pos = torch.nonzero(data["labels"].any(dim=1)).squeeze(1).numpy()
        rng = np.random.default_rng(p.seed)
        rng.shuffle(has_pos)
        n_hold = max(1, int(len(has_pos) * p.holdout_share)) if len(has_pos) > 1 else 0
        hold, train = has_pos[:n_hold], has_pos[n_hold:] if n_hold < len(has_pos) else has_pos

        def batches(epoch: int, gen: np.random.Generator) -> Any:
            order = gen.permutation(train)
            for lo in range(0, len(order), p.batch_size):
                idx = torch.from_numpy(order[lo : lo + p.batch_size])
                yield {k: v[idx] for k, v in data.items()}

        def loss(model: nn.Module, batch: Any) -> Tensor:
            return listwise_softmax(model(batch), batch["labels"], batch["mask"])

        def validate(model: nn.Module) -> float:
            idx = torch.from_numpy(hold)
            part = {k: v[idx] for k, v in data.items()}
            return _ndcg10(model(part), part["labels"])

        fit(
            self.model_,
            batches,
            loss,
            epochs=p.epochs,
            lr=p.lr,
            weight_decay=p.weight_decay,
            seed=p.seed,
            device=p.device,
            validate=validate if len(hold) else None,
            patience=p.patience,
            num_threads=p.threads,
        )
        self.model_.cpu().eval()

    # -- inference ------------------------------------------------------------------------
    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        width = min(view.width, self.params.max_len)
        new = np.zeros((candidates.batch_size, width), dtype=np.float32)
        rows = np.arange(candidates.batch_size, dtype=np.int64)
        with torch.no_grad():
            for lo in range(0, len(rows), _CHUNK):
                part = rows[lo : lo + _CHUNK]
                batch = self._encode(query.select(part), _select(candidates, part))
                new[part, : batch["items"].shape[1]] = self.model_(batch).numpy()
        # beyond max_len: below every re-scored item, in incoming order
        tail = new.min(axis=1, initial=0.0, where=view.valid[:, :width])[:, None] - 1.0
        extra = tail - np.arange(1, view.width - width + 1, dtype=np.float32)[None, :]
        full = np.concatenate([new, extra], axis=1)
        full = np.where(view.valid, full, -np.inf)
        order = np.argsort(-full, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(view.flat, order, axis=1)
        scores = np.zeros(len(candidates), dtype=np.float32)
        scores[view.flat[view.valid]] = full[view.valid]
        return take_order(candidates.with_scores(scores, stage="prm"), picked)

    def _encode(self, query: Query, cands: Candidates) -> dict[str, Tensor]:
        """Model inputs for the first ``max_len`` items of each row (see ``PRM.forward``)."""
        p = self.params
        view = pad(cands)
        width = min(view.width, p.max_len)
        items, valid = view.items[:, :width], view.valid[:, :width]
        known = valid & (items < self.n_items_)
        codes = np.where(known, items + 1, 0)
        tags = np.where(known[..., None], self.tag_codes_[np.where(known, items, 0)], 0)
        sources = [cands.scores] + [cands.stage_scores[n] for n in self.score_names_]
        feats = [_normalised(spread(view, s, 0.0)[:, :width], valid) for s in sources]
        h_off, h_items, _ = query.recent_history(p.hist_len)
        h_codes = np.where(h_items < self.n_items_, h_items + 1, 0)
        hist = ragged.to_dense(h_off, h_codes, p.hist_len, 0)
        return {
            "items": torch.from_numpy(codes.astype(np.int64)),
            "tags": torch.from_numpy(tags.astype(np.int64)),
            "scores": torch.from_numpy(np.concatenate(feats, axis=2).astype(np.float32)),
            "hist": torch.from_numpy(np.asarray(hist, dtype=np.int64)),
            "mask": torch.from_numpy(valid.copy()),
        }

    # -- persistence ----------------------------------------------------------------------
    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        write_json(directory / "prm.json", {"score_names": self.score_names_})
        torch.save(self.model_.state_dict(), directory / "model.pt")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self.score_names_ = list(read_json(directory / "prm.json")["score_names"])
        model = self._new_model()
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        self.model_ = model.eval()


def _training_queries(
    dataset: Dataset, valid: Dataset | None, max_lists: int, seed: int
) -> tuple[Query, IntArray, IntArray]:
    """Queries and their ragged labels: validation users (history = ``dataset``) labelled by
    their validation items, or each user's history minus its last item, labelled by it."""
    rng = np.random.default_rng(seed)
    lens = ragged.lengths(dataset.sequences[0])
    if valid is not None:
        users = np.flatnonzero((np.diff(valid.user_item.indptr) > 0) & (lens[: valid.n_users] > 0))
        users = np.sort(rng.permutation(users)[:max_lists]).astype(np.int64)
        mat = valid.user_item[users]
        query = dataset.query(users, 10)
        return query, mat.indptr.astype(np.int64), mat.indices.astype(np.int64)
    users = np.flatnonzero(lens >= 2)
    users = np.sort(rng.permutation(users)[:max_lists]).astype(np.int64)
    query = prefix_queries(dataset, users, lens[users] - 1)
    seq_off, seq_items, _ = dataset.sequences
    labels = seq_items[seq_off[users + 1] - 1]
    return query, np.arange(len(users) + 1, dtype=np.int64), labels.astype(np.int64)


def _tag_codes(dataset: Dataset, max_tags: int) -> IntArray:
    """``[n_items, T]`` tag codes ``1..n_tags`` per item (``0`` = none), at most ``max_tags``."""
    tags = dataset.item_tags[0]
    width = max(1, min(max_tags, int(np.diff(tags.indptr).max(initial=0))))
    dense = ragged.to_dense(tags.indptr.astype(np.int64), tags.indices + 1, width, 0)
    return np.asarray(dense, dtype=np.int64)


def _normalised(values: npt.NDArray[np.floating], valid: npt.NDArray[np.bool_]) -> Any:
    """``[B, L, 2]``: per-list z-score and min-max of ``values`` (0 on padding)."""
    v = values.astype(np.float64)
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, v, 0.0).sum(axis=1, keepdims=True) / n
    std = np.sqrt(np.where(valid, (v - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n)
    lo = np.where(valid, v, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    hi = np.where(valid, v, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    span = np.where(hi > lo, hi - lo, 1.0)
    z = np.where(valid, (v - mean) / np.maximum(std, 1e-6), 0.0)
    mm = np.where(valid & (hi > lo), (v - lo) / span, 0.0)
    return np.stack([z, mm], axis=2)


def _select(cands: Candidates, rows: IntArray) -> Candidates:
    """Rows ``rows`` (ascending, contiguous) of ``cands``."""
    lo, hi = int(cands.offsets[rows[0]]), int(cands.offsets[rows[-1] + 1])
    part = cands.take(np.arange(lo, hi, dtype=np.int64))
    offsets = cands.offsets[rows[0] : rows[-1] + 2] - lo
    return Candidates(
        offsets=offsets,
        item_idx=part.item_idx,
        scores=part.scores,
        channels=part.channels,
        source=part.source,
        channel_ranks=part.channel_ranks,
        stage_scores=part.stage_scores,
        reasons=part.reasons,
    )


def _ndcg10(logits: Tensor, labels: Tensor) -> float:
    """Mean NDCG@10 of the lists ordered by ``logits`` ``[B, L]`` (binary ``labels``)."""
    k = min(10, logits.shape[1])
    top = torch.topk(logits, k, dim=1).indices
    gains = labels.gather(1, top).to(torch.float64)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = (gains * discount).sum(1)
    n_pos = labels.sum(1).clamp(max=k).to(torch.int64)
    ideal = torch.cumsum(discount, 0)[(n_pos - 1).clamp_min(0)] * (n_pos > 0)
    return float((dcg / ideal.clamp_min(1e-12)).mean())
