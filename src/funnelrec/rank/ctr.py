"""CTR ranker ``ctr``: any architecture of ``funnelrec.models.ctr`` behind the rank slot.

Training data (``_examples``): impressions when the dataset has them (``train_on="auto"``),
otherwise cut-point queries whose positives are the users' next items and whose negatives
are the recall stage's own candidates for that query (exposure-consistent) mixed with a few
random items. Features come from ``FeatureBuilder`` (ids, user/item attributes, genres,
context, last ``K`` behaviours, recall provenance) — the same call at training and serving.
A share of the training queries is held out for early stopping (GAUC over queries). With
``loss = "listwise"`` (one softmax over every candidate of a query, batches of whole lists)
early stopping watches NDCG@10 of the funnel's validation lists (``ctx.valid_examples``,
the serving-time view) when the funnel gives them, else of the held-out queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
from pydantic import Field

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.features import Batch, FeatureBuilder, FeatureConfig
from funnelrec.io import read_json, write_json
from funnelrec.models.ctr import CTR_MODELS, CTRConfig, CTRModel, build_model
from funnelrec.models.ctr.base import Interest
from funnelrec.ragged import FloatArray
from funnelrec.rank.base import Scorer
from funnelrec.registry import RANK
from funnelrec.stage import Params
from funnelrec.train.examples import Examples, concat, impression_examples, recall_examples
from funnelrec.train.loop import Optimizer, seeded
from funnelrec.train.rows import Loss, TrainSettings, predict_queries, train_model
from funnelrec.types import Candidates, Query

ModelName = Literal[
    "lr", "fm", "widedeep", "deepfm", "dcnv2", "xdeepfm", "autoint", "din", "twotower"
]  # fmt: skip
_NOT_JSON = ("model_", "builder_")


class CTRParams(Params):
    """Parameters of the ``ctr`` ranker.

    Model: ``model`` (architecture), ``dim``, ``hidden``, ``dropout``, ``interest``
    (short-term encoder over the last ``features.seq_len`` behaviours: none/mean/gru/
    transformer), ``cross_layers`` (DCN-v2), ``cin`` (xDeepFM), ``heads``/``blocks``
    (AutoInt), ``att_hidden`` (DIN). Data: ``train_on`` (auto = impressions if any, else
    recall; both = impression and recall examples together), ``cuts``/``horizon``/
    ``max_neg``/``n_random`` (recall examples), ``max_queries``, ``valid_fraction``
    (held-out queries for early stopping). Training:
    ``loss`` (bce/bpr/softmax/listwise), ``n_neg`` (negatives per positive for
    bpr/softmax; ``listwise`` takes every candidate of a list, ``batch_size`` rows of whole
    lists per step), the
    optimiser settings, ``seed``, ``device``, ``threads``.
    """

    model: ModelName = "deepfm"
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    dim: int = Field(default=16, ge=1)
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    interest: Interest = "none"
    cross_layers: int = Field(default=2, ge=1)
    cin: tuple[int, ...] = (32, 32)
    heads: int = Field(default=2, ge=1)
    blocks: int = Field(default=2, ge=1)
    att_hidden: tuple[int, ...] = (32,)
    train_on: Literal["auto", "impressions", "recall", "both"] = "auto"
    cuts: int = Field(default=3, ge=1)
    horizon: int = Field(default=1, ge=1)
    max_neg: int = Field(default=100, ge=1)
    n_random: int = Field(default=10, ge=0)
    max_queries: int = Field(default=50_000, ge=1)
    valid_fraction: float = Field(default=0.1, ge=0, lt=1)
    loss: Loss = "bce"
    n_neg: int = Field(default=8, ge=1)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=1024, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    optimizer: Optimizer = "adam"
    patience: int = Field(default=2, ge=1)
    seed: int = 0
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    progress: bool | None = None


@RANK.register("ctr")
class CTRRanker(Scorer[CTRParams]):
    """Scores every (query, candidate) pair with a trained CTR model (logits)."""

    kind: ClassVar[str] = "rank"
    reads_channel_evidence: ClassVar[bool] = False  # its features: provenance and "recall"
    params_model = CTRParams
    example_params: ClassVar[dict[str, Any]] = {
        "epochs": 1,
        "dim": 4,
        "hidden": [8],
        "max_neg": 20,
        "threads": 1,
    }

    # -- training ---------------------------------------------------------------------------
    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        valid = None
        if self.params.loss == "listwise" and ctx is not None and ctx.valid_examples is not None:
            valid = ctx.valid_examples()
        return self.fit_examples(dataset, self._examples(dataset, ctx), valid=valid)

    def fit_examples(
        self,
        dataset: Dataset,
        examples: Examples,
        soft: FloatArray | None = None,
        valid: Examples | None = None,
    ) -> Self:
        """Train on given examples; ``soft`` ``[N]``: training targets replacing the labels
        (distillation; validation keeps the hard labels); ``valid``: validation lists for
        early stopping (default: a ``valid_fraction`` of the examples' queries)."""
        builder = FeatureBuilder(self.params.features).fit(dataset, examples.candidates.channels)
        held: Batch | None
        if valid is not None and valid.labels.any():
            train = self._batches(builder, examples, soft, share=0.0)[0]
            held = self._batches(builder, valid, None, share=0.0)[0]
        else:
            train, held = self._batches(builder, examples, soft)
        model = self._new_model(builder)
        result = train_model(model, train, held, self._settings())
        self.builder_, self.model_ = builder, model.cpu().eval()
        self.fit_log_ = {
            "best_epoch": result.best_epoch,
            "best_metric": result.best_metric,
            "epochs_run": result.epochs_run,
            "n_examples": len(train),
            "positive_rate": float(examples.labels.mean()) if len(examples.labels) else 0.0,
        }
        return self

    def _examples(self, dataset: Dataset, ctx: FitContext | None) -> Examples:
        """The funnel's training lists (``ctx.examples``, out-of-fold) when it gives them and
        no impressions are used; else examples built here with the funnel's recall."""
        p = self.params
        retrieve = None if ctx is None else ctx.retrieve
        has_imp = dataset.impressions is not None and dataset.impressions.height > 0
        if p.train_on == "impressions" and not has_imp:
            raise ValueError("train_on='impressions' but the dataset has no impressions")
        use_imp = has_imp and p.train_on in ("impressions", "auto", "both")
        use_recall = p.train_on in ("recall", "both") or not use_imp
        if use_recall and not use_imp and ctx is not None and ctx.examples is not None:
            return ctx.examples()
        parts = []
        if use_imp:
            parts.append(impression_examples(dataset, retrieve, p.max_queries, p.seed))
        if use_recall:
            parts.append(recall_examples(
                dataset, retrieve, cuts=p.cuts, horizon=p.horizon, max_neg=p.max_neg,
                n_random=p.n_random, max_queries=p.max_queries, seed=p.seed,
            ))  # fmt: skip
        return parts[0] if len(parts) == 1 else concat(parts)

    def _batches(
        self,
        builder: FeatureBuilder,
        ex: Examples,
        soft: FloatArray | None,
        share: float | None = None,
    ) -> tuple[Batch, Batch | None]:
        """Training and validation batches (validation = a random ``share`` of the queries,
        default ``valid_fraction``)."""
        rows = torch.from_numpy(ex.candidates.row_ids())
        full = builder.build(ex.query, ex.candidates).with_labels(torch.from_numpy(ex.labels), rows)
        target = full if soft is None else full.with_labels(torch.from_numpy(soft), rows)
        share = self.params.valid_fraction if share is None else share
        n_valid = round(share * ex.query.batch_size)
        if n_valid == 0:
            return target, None
        rng = np.random.default_rng(self.params.seed)
        held = np.zeros(ex.query.batch_size, dtype=np.bool_)
        held[rng.choice(ex.query.batch_size, n_valid, replace=False)] = True
        mask = held[rows.numpy()]
        return target.take(np.flatnonzero(~mask)), full.take(np.flatnonzero(mask))

    def _settings(self) -> TrainSettings:
        p = self.params
        return TrainSettings(
            loss=p.loss, n_neg=p.n_neg, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
            weight_decay=p.weight_decay, optimizer=p.optimizer, patience=p.patience,
            seed=p.seed, device=p.device, threads=p.threads, progress=p.progress,
        )  # fmt: skip

    def model_config(self) -> CTRConfig:
        p = self.params
        return CTRConfig(
            dim=p.dim, hidden=p.hidden, dropout=p.dropout, interest=p.interest,
            cross_layers=p.cross_layers, cin=p.cin, heads=p.heads, blocks=p.blocks,
            att_hidden=p.att_hidden,
        )  # fmt: skip

    def _new_model(self, builder: FeatureBuilder) -> CTRModel:
        with seeded(self.params.seed):
            return build_model(self.params.model, builder.schema, self.model_config())

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        return candidates.with_scores(self.logits(query, candidates), stage=self.kind)

    def logits(self, query: Query, candidates: Candidates) -> np.ndarray[Any, Any]:
        """``[N]`` model logits of every candidate (flat order)."""
        self.check_fitted()
        if len(candidates) == 0:
            return np.zeros(0, dtype=np.float32)
        # each query's behaviours once, not once per candidate (a two-tower runs its user
        # tower once per query, its item tower once per item); the same logits as
        # predicting on a batch with ``seq``
        builder, reads = self.builder_, self.model_.reads_sequence
        query_seq = torch.from_numpy(builder.sequence(query)) if reads else None
        rows = torch.from_numpy(candidates.row_ids())
        items = torch.from_numpy(candidates.item_idx)
        pairs = builder.build(query, candidates, with_seq=False)
        return predict_queries(self.model_, pairs, query_seq, rows, items)

    # -- persistence ------------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().fitted_state().items() if k not in _NOT_JSON}

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        meta, tables = self.builder_.state()
        write_json(directory / "features.json", meta)
        np.savez(directory / "features.npz", allow_pickle=False, **tables)
        torch.save(self.model_.state_dict(), directory / "model.pt")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        with np.load(directory / "features.npz", allow_pickle=False) as npz:
            tables = {k: npz[k] for k in npz.files}
        self.builder_ = FeatureBuilder.from_state(read_json(directory / "features.json"), tables)
        model = build_model(self.params.model, self.builder_.schema, self.model_config())
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        self.model_ = model.eval()


assert set(CTR_MODELS) == set(ModelName.__args__)  # type: ignore[attr-defined]
