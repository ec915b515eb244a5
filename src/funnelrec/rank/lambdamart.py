"""LambdaMART ranker ``lambdamart``: LightGBM ``lambdarank`` over funnel features.

The standard industrial stacker of heterogeneous scores. Features are ``FunnelFeatures``
(per-channel score/rank/presence, embedding-channel scores and similarity to the recent
history, popularity/trend/age, user activity, category match). Training lists come from the
funnel (``ctx.examples``: out-of-fold by default); early stopping watches NDCG@``eval_at``
on the funnel's validation lists (``ctx.valid_examples``) or, without them, on a held-out
share of the training lists. The booster is saved in LightGBM's text format (no pickle);
``fit_log_["importance"]`` holds the gain importance of every feature (for the report).

Outside a funnel (``fit(dataset)``) the lists are cut-point queries over a popularity
recall, so the stage still fits on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
from pydantic import Field, field_validator

from funnelrec import ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.funnel_features import FunnelFeatureConfig, FunnelFeatures
from funnelrec.io import read_json, write_json
from funnelrec.rank.base import Scorer
from funnelrec.recall.popular import PopularRecall
from funnelrec.registry import RANK
from funnelrec.stage import Params
from funnelrec.train.boosting import SmoothedEarlyStopping
from funnelrec.train.examples import Examples, recall_examples
from funnelrec.types import Candidates, Query

_NOT_JSON = ("model_", "features_")


class LambdaMARTParams(Params):
    """Parameters of ``lambdamart``: the feature groups (``features``), LightGBM's
    ``n_estimators`` (upper bound; early stopping picks the number), ``learning_rate``,
    ``num_leaves``, ``min_data_in_leaf``, ``feature_fraction``, ``bagging_fraction``,
    ``lambda_l2``, ``objective`` (``lambdarank`` or ``rank_xendcg``), ``truncation_level``
    (LightGBM's ``lambdarank_truncation_level``: how deep in each list pairs are weighted),
    ``eval_at`` (the NDCG depth early stopping watches), ``stopping_window`` (rounds of the
    centred moving average of validation NDCG that early stopping maximises; 1 = the raw
    curve), ``early_stopping`` (least rounds without improvement before stopping; the wait is
    ``max(early_stopping, best round)``: ``train.boosting.SmoothedEarlyStopping``),
    ``valid_fraction`` (held-out training lists when the funnel gives no validation lists),
    ``max_neg`` / ``cuts`` (lists built outside a funnel), ``seed``, ``threads``."""

    features: FunnelFeatureConfig = Field(default_factory=FunnelFeatureConfig)
    n_estimators: int = Field(default=500, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=50, ge=1)
    feature_fraction: float = Field(default=0.9, gt=0, le=1)
    bagging_fraction: float = Field(default=1.0, gt=0, le=1)
    lambda_l2: float = Field(default=1.0, ge=0)
    objective: str = Field(default="lambdarank", pattern="^(lambdarank|rank_xendcg)$")
    truncation_level: int = Field(default=30, ge=1)
    eval_at: int = Field(default=10, ge=1)
    early_stopping: int = Field(default=50, ge=1)
    stopping_window: int = Field(default=21, ge=1)
    valid_fraction: float = Field(default=0.1, ge=0, lt=1)
    max_neg: int = Field(default=100, ge=1)
    cuts: int = Field(default=3, ge=1)
    seed: int = 0
    threads: int = Field(default=1, ge=1)

    @field_validator("stopping_window")
    @classmethod
    def _odd_window(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"stopping_window must be odd (a centred window), got {value}")
        return value


@RANK.register("lambdamart")
class LambdaMARTRanker(Scorer[LambdaMARTParams]):
    """Scores candidates with a LightGBM LambdaMART model over funnel features."""

    kind: ClassVar[str] = "rank"
    params_model = LambdaMARTParams
    example_params: ClassVar[dict[str, Any]] = {"n_estimators": 5, "min_data_in_leaf": 2}

    # -- training -------------------------------------------------------------------------
    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        train = self._train_examples(dataset, ctx)
        valid = None if ctx is None or ctx.valid_examples is None else ctx.valid_examples()
        train, valid = _with_positives(train), None if valid is None else _with_positives(valid)
        if valid is None or valid.query.batch_size == 0:
            train, valid = _holdout(train, self.params.valid_fraction, self.params.seed)
        features = FunnelFeatures(self.params.features).fit(dataset, train.candidates)
        booster, result = self._train(features, train, valid)
        self.features_, self.model_ = features, booster
        gain = booster.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        self.fit_log_ = {
            **result,
            "n_lists": int(train.query.batch_size),
            "n_rows": len(train.labels),
            "stacking": "standalone" if ctx is None else ctx.stacking,
            "importance": {
                n: round(float(g) / total, 5) for n, g in zip(features.names, gain, strict=True)
            },
        }
        return self

    def _train_examples(self, dataset: Dataset, ctx: FitContext | None) -> Examples:
        if ctx is not None and ctx.examples is not None:
            return ctx.examples()
        retrieve = None if ctx is None else ctx.retrieve
        if retrieve is None:
            popular = PopularRecall().fit(dataset)
            k = self.params.max_neg

            def retrieve(query: Query) -> Candidates:
                return popular.retrieve(query, k)

        p = self.params
        return recall_examples(
            dataset, retrieve, cuts=p.cuts, horizon=1, max_neg=p.max_neg, n_random=0,
            max_queries=50_000, seed=p.seed,
        )  # fmt: skip

    def _train(
        self, features: FunnelFeatures, train: Examples, valid: Examples | None
    ) -> tuple[lgb.Booster, dict[str, Any]]:
        p = self.params
        params = {
            "objective": p.objective, "metric": "ndcg", "eval_at": [p.eval_at],
            "learning_rate": p.learning_rate, "num_leaves": p.num_leaves,
            "min_data_in_leaf": p.min_data_in_leaf, "feature_fraction": p.feature_fraction,
            "bagging_fraction": p.bagging_fraction, "bagging_freq": int(p.bagging_fraction < 1),
            "lambda_l2": p.lambda_l2, "lambdarank_truncation_level": p.truncation_level,
            "seed": p.seed, "num_threads": p.threads,
            "verbosity": -1, "deterministic": True, "force_row_wise": True,
        }  # fmt: skip
        train_set = _dataset(features, train, names=[n.replace(":", "__") for n in features.names])
        sets, callbacks = [train_set], list[Callable[..., Any]]()
        stop = SmoothedEarlyStopping(f"ndcg@{p.eval_at}", p.stopping_window, p.early_stopping)
        if valid is not None and valid.query.batch_size:
            sets.append(_dataset(features, valid, reference=train_set))
            callbacks.append(stop)
        booster = lgb.train(params, train_set, p.n_estimators, valid_sets=sets[1:] or None,
                            callbacks=callbacks)  # fmt: skip
        # lgb.train hands back a stopped booster already cut to its best round
        trained = len(stop.curve) or booster.current_iteration()
        best = stop.best_iteration or trained
        if best < booster.current_iteration():
            booster = booster.model_from_string(booster.model_to_string(num_iteration=best))
        found = bool(stop.curve)
        return booster, {
            "best_iteration": int(best),
            "rounds_trained": int(trained),
            "valid_ndcg": round(stop.best_raw, 5) if found else None,
            "valid_ndcg_smoothed": round(stop.best_smoothed, 5) if found else None,
        }

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, query: Query, candidates: Candidates) -> Candidates:
        self.check_fitted()
        if len(candidates) == 0:
            return candidates.with_scores(np.zeros(0, dtype=np.float32), stage=self.kind)
        x = self.features_.build(query, candidates)
        scores = self.model_.predict(x, num_threads=self.params.threads)
        return candidates.with_scores(np.asarray(scores, dtype=np.float32), stage=self.kind)

    # -- persistence ------------------------------------------------------------------------
    def fitted_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().fitted_state().items() if k not in _NOT_JSON}

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        meta, tables = self.features_.state()
        write_json(directory / "features.json", meta)
        np.savez(directory / "features.npz", allow_pickle=False, **tables)
        self.model_.save_model(str(directory / "model.txt"))

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        with np.load(directory / "features.npz", allow_pickle=False) as npz:
            tables = {k: npz[k] for k in npz.files}
        self.features_ = FunnelFeatures.from_state(read_json(directory / "features.json"), tables)
        self.model_ = lgb.Booster(model_file=str(directory / "model.txt"))


def _dataset(
    features: FunnelFeatures,
    ex: Examples,
    names: list[str] | None = None,
    reference: lgb.Dataset | None = None,
) -> lgb.Dataset:
    x = features.build(ex.query, ex.candidates)
    return lgb.Dataset(
        x, label=ex.labels, group=ex.candidates.lengths(), feature_name=names or "auto",
        reference=reference, free_raw_data=True,
    )  # fmt: skip


def _with_positives(ex: Examples) -> Examples:
    """Only the lists with at least one positive (the others teach a ranker nothing)."""
    rows = ex.candidates.row_ids()
    has = np.bincount(rows[ex.labels > 0], minlength=ex.query.batch_size) > 0
    return _select(ex, np.flatnonzero(has))


def _select(ex: Examples, keep: np.ndarray[Any, Any]) -> Examples:
    mask = np.zeros(ex.query.batch_size, dtype=np.bool_)
    mask[keep] = True
    flat = mask[ex.candidates.row_ids()]
    cands = ex.candidates.take(np.flatnonzero(flat))
    cands = _rebatch(cands, ex.candidates.lengths()[mask])
    return Examples(ex.query.select(keep.astype(np.int64)), cands, ex.labels[flat])


def _rebatch(cands: Candidates, lengths: np.ndarray[Any, Any]) -> Candidates:
    return dataclasses.replace(cands, offsets=ragged.offsets_from_lengths(lengths))


def _holdout(ex: Examples, share: float, seed: int) -> tuple[Examples, Examples | None]:
    n = ex.query.batch_size
    n_valid = round(share * n)
    if n_valid == 0 or n_valid == n:
        return ex, None
    perm = np.random.default_rng(seed).permutation(n)
    return _select(ex, np.sort(perm[n_valid:])), _select(ex, np.sort(perm[:n_valid]))
