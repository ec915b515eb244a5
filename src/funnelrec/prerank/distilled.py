"""Distilled pre-ranker ``distilled``: a small LightGBM model that learns the funnel's ranker.

``Funnel.fit`` fits the ranker first and hands it to the pre-ranker as ``ctx.teacher``. The
pre-ranker scores the same training lists (``ctx.examples``: out-of-fold by default) with the
teacher and learns to reproduce that order from cheap features only (``FunnelFeatures``:
per-channel score/rank/presence and popularity by default; no embedding look-ups, no user or
category tables), so the pre-rank cut keeps what the ranker would put on top
(``consistency@K`` in the funnel report). Objectives:

* ``regression`` (default): L2 on the teacher's score centred within each list (the
  per-list offset is user-level and does not change the order);
* ``lambdarank``: relevance grades from the teacher's rank in the list (grade = number of
  ``grade_at`` depths the rank is under).

Early stopping watches the *consistency* on the funnel's validation lists
(``ctx.valid_examples``, full merged lists): the share of the teacher's top ``top`` that the
pre-ranker keeps in its top ``keep`` (set them to the config's ``rank.keep`` and
``prerank.keep``). Without a teacher (fitted alone, or in a funnel whose ranker is not given)
the targets are the lists' labels. Scoring, features and persistence are the ``lambdamart``
ranker's (``rank/lambdamart.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import lightgbm as lgb
import numpy as np
from pydantic import Field, model_validator

from funnelrec import provenance, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.funnel_features import FunnelFeatureConfig, FunnelFeatures
from funnelrec.ragged import BoolArray, FloatArray, IntArray
from funnelrec.rank.lambdamart import LambdaMARTParams, LambdaMARTRanker
from funnelrec.registry import PRERANK
from funnelrec.train.examples import Examples


def _cheap_features() -> FunnelFeatureConfig:
    return FunnelFeatureConfig(embeddings=False, user=False, category=False)


class DistilledParams(LambdaMARTParams):
    """``lambdamart`` params with light defaults (cheap ``features``, 7 leaves, at most 200
    trees), plus ``objective`` (``regression`` on the centred teacher score or
    ``lambdarank`` on teacher-rank grades), ``grade_at`` (rank depths of the grades),
    ``top`` / ``keep`` (the consistency early stopping watches: the teacher's top ``top``
    kept in the pre-ranker's top ``keep``)."""

    features: FunnelFeatureConfig = Field(default_factory=_cheap_features)
    n_estimators: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    num_leaves: int = Field(default=7, ge=2)
    objective: Literal["regression", "lambdarank"] = "regression"
    early_stopping: int = Field(default=20, ge=1)
    grade_at: tuple[int, ...] = (1, 5, 10)
    top: int = Field(default=50, ge=1)
    keep: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _check(self) -> DistilledParams:
        if (
            not self.grade_at
            or any(g < 1 for g in self.grade_at)
            or list(self.grade_at) != sorted(set(self.grade_at))
        ):
            raise ValueError(f"grade_at must be increasing depths >= 1, got {self.grade_at}")
        if self.keep < self.top:
            raise ValueError(f"keep ({self.keep}) must be >= top ({self.top})")
        return self


@PRERANK.register("distilled")
class DistilledPreranker(LambdaMARTRanker):
    """LightGBM pre-ranker trained on the funnel ranker's scores (see module doc)."""

    kind: ClassVar[str] = "prerank"
    params_model = DistilledParams
    example_params: ClassVar[dict[str, Any]] = {"n_estimators": 5, "min_data_in_leaf": 2}

    @property
    def dparams(self) -> DistilledParams:
        assert isinstance(self.params, DistilledParams)
        return self.params

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        teacher = None if ctx is None else ctx.teacher
        train = self._train_examples(dataset, ctx)
        valid = None if ctx is None or ctx.valid_examples is None else ctx.valid_examples()
        features = FunnelFeatures(self.dparams.features).fit(dataset, train.candidates)
        booster, score = self._boost(features, train, valid, teacher)
        self.features_, self.model_ = features, booster
        self.fit_log_ = {
            "best_iteration": int(booster.current_iteration()),
            "valid_consistency": None if score is None else round(float(score), 5),
            "teacher": None if teacher is None else teacher.registered_name,
            "n_lists": int(train.query.batch_size),
            "n_rows": len(train.labels),
        }
        return self

    def _boost(
        self, features: FunnelFeatures, train: Examples, valid: Examples | None, teacher: Any
    ) -> tuple[lgb.Booster, float | None]:
        """The booster (cut to its best iteration) and its validation consistency."""
        p = self.dparams
        train_set = lgb.Dataset(
            features.build(train.query, train.candidates),
            label=self._labels(train.candidates.offsets, _targets(teacher, train)),
            group=train.candidates.lengths() if p.objective == "lambdarank" else None,
            feature_name=[n.replace(":", "__") for n in features.names],
        )
        feval, sets = None, []
        if valid is not None and len(valid.labels):
            relevant = (
                valid.labels > 0.5
                if teacher is None
                else _ranks(valid.candidates.offsets, _targets(teacher, valid)) < p.top
            )
            feval = _consistency_eval(valid.candidates.offsets, relevant, p.keep)
            x_valid = features.build(valid.query, valid.candidates)
            sets = [lgb.Dataset(x_valid, label=np.zeros(len(x_valid)), reference=train_set)]
        booster = lgb.train(
            self._lgb_params(), train_set, p.n_estimators, valid_sets=sets or None, feval=feval,
            callbacks=[lgb.early_stopping(p.early_stopping, verbose=False)] if sets else [],
        )  # fmt: skip
        best = booster.best_iteration or booster.current_iteration()
        if best < booster.current_iteration():
            booster = booster.model_from_string(booster.model_to_string(num_iteration=best))
        return booster, booster.best_score.get("valid_0", {}).get("consistency")

    def _lgb_params(self) -> dict[str, Any]:
        p = self.dparams
        return {
            "objective": p.objective, "metric": "None", "learning_rate": p.learning_rate,
            "num_leaves": p.num_leaves, "min_data_in_leaf": p.min_data_in_leaf,
            "feature_fraction": p.feature_fraction, "bagging_fraction": p.bagging_fraction,
            "bagging_freq": int(p.bagging_fraction < 1), "lambda_l2": p.lambda_l2,
            "lambdarank_truncation_level": p.keep, "seed": p.seed, "num_threads": p.threads,
            "verbosity": -1, "deterministic": True, "force_row_wise": True,
        }  # fmt: skip

    def _labels(self, offsets: IntArray, target: FloatArray) -> FloatArray:
        """Training labels: centred scores (regression) or rank grades (lambdarank)."""
        if self.dparams.objective == "regression":
            rows = ragged.row_ids(offsets)
            lens = np.maximum(ragged.lengths(offsets), 1)
            mean = np.bincount(rows, weights=target, minlength=len(lens)) / lens
            return (target - mean[rows]).astype(np.float32)
        rank = _ranks(offsets, target)
        grades = sum((rank < g).astype(np.int64) for g in self.dparams.grade_at)
        return np.asarray(grades, dtype=np.float32)


def _targets(teacher: Any, ex: Examples) -> FloatArray:
    """``[N]`` the teacher's score of every candidate (flat order), or the labels."""
    if teacher is None or len(ex.labels) == 0:
        return ex.labels.astype(np.float64)
    scored = teacher.score(ex.query, ex.candidates)
    m = provenance.locate(ex.candidates.offsets, ex.candidates.item_idx, scored)
    return np.asarray(scored.scores[m.src], dtype=np.float64)


def _ranks(offsets: IntArray, scores: FloatArray) -> IntArray:
    """``[N]`` 0-based rank of every element within its row (descending score)."""
    order = ragged.sort_within_rows(offsets, np.asarray(scores, dtype=np.float32))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = ragged.position_in_row(offsets)
    return rank


def kept_share(offsets: IntArray, scores: FloatArray, relevant: BoolArray, keep: int) -> float:
    """Share of the ``relevant`` elements ranked in the top ``keep`` of their row by ``scores``."""
    total = int(relevant.sum())
    if total == 0:
        return 0.0
    return float((relevant & (_ranks(offsets, scores) < keep)).sum() / total)


def _consistency_eval(offsets: IntArray, relevant: BoolArray, keep: int) -> Any:
    """LightGBM ``feval`` on the validation lists: ``kept_share`` (higher is better)."""

    def feval(preds: FloatArray, _: lgb.Dataset) -> tuple[str, float, bool]:
        return "consistency", kept_share(offsets, preds, relevant, keep), True

    return feval
