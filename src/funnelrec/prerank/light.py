"""Light pre-ranker ``light``: a two-tower CTR scorer trained on the ranker's labels.

Same training examples and features as the ``ctr`` ranker (exposure-consistent recall
candidates or impressions), but a model with no MLP: ``<user vector, item vector>`` plus a
first-order term over the recall provenance (``models/ctr/twotower.py``), so it can cut
thousands of candidates to hundreds cheaply. With ``teacher`` (the params of a ``ctr``
ranker) the teacher is trained on the same examples first and the pre-ranker learns the
soft targets ``(1 - distill)·label + distill·σ(teacher logit)`` (distillation), which keeps
the pre-rank cut consistent with what the ranker would choose.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.rank.ctr import CTRParams, CTRRanker, ModelName
from funnelrec.registry import PRERANK


class LightParams(CTRParams):
    """``CTRParams`` with a two-tower default model, plus ``teacher`` (params of a ``ctr``
    ranker to distil from, ``None``: plain labels) and ``distill`` (weight of the teacher's
    probability in the soft target)."""

    model: ModelName = "twotower"
    teacher: dict[str, Any] | None = None
    distill: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _valid_teacher(self) -> LightParams:
        if self.teacher is not None:
            if self.loss != "bce":
                raise ValueError("distillation from a teacher needs loss='bce'")
            CTRParams.model_validate(self.teacher)  # unknown or bad teacher keys fail here
        return self


@PRERANK.register("light")
class LightPreranker(CTRRanker):
    """Two-tower pre-ranker (optionally distilled from a CTR ranker)."""

    kind: ClassVar[str] = "prerank"
    params_model = LightParams
    example_params: ClassVar[dict[str, Any]] = {
        **CTRRanker.example_params,
        "teacher": {"model": "fm", "epochs": 1, "dim": 4, "threads": 1},
    }

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.params
        assert isinstance(p, LightParams)
        examples = self._examples(dataset, ctx)
        soft = None
        if p.teacher is not None:
            teacher = CTRRanker(CTRRanker.validate_params(dict(p.teacher)))
            teacher.fit_examples(dataset, examples)
            logits = teacher.logits(examples.query, examples.candidates).astype(np.float64)
            prob = 1.0 / (1.0 + np.exp(-logits))
            soft = ((1 - p.distill) * examples.labels + p.distill * prob).astype(np.float32)
            self.teacher_log_ = teacher.fit_log_
        return self.fit_examples(dataset, examples, soft)
