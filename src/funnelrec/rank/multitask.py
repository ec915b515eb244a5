"""Multi-task ranker ``multitask``: one model, several objectives (click, like, purchase...),
one fused ranking score (its pre-rank version: ``prerank/multitask.py``).

Task definitions (``TaskDef`` in ``funnelrec/tasks.py``: name, label column, threshold, fusion
weight) are the same
objects for the pre-ranker and the ranker; in a funnel config they are written once at the
top level (``[[tasks]]``) and handed to every scorer that takes ``tasks``.

Training examples, features and the validation split are the ``ctr`` ranker's (impression
slates when the dataset has them, else exposure-consistent recall candidates). The base
label (impression click, or "is the user's next item") is the task whose column is
``click``/``clicked``; any other task reads its column from the interaction log — joined on
``(user, item, timestamp)`` for impressions, ``(user, item)`` otherwise — and is positive
where the base label is and the value exceeds ``threshold`` (so ``like`` / ``purchase`` sit
inside clicks, the click → conversion funnel ESMM models). Each task is trained with BCE,
combined by the ``weighting`` of ``train/multitask.py`` (fixed, uncertainty, MGDA/PE-LTR);
candidates are ranked by ``fuse`` (``rank/fusion.py``) of the per-task logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import polars as pl
import torch
from pydantic import Field, model_validator

from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.features import FeatureBuilder
from funnelrec.io import read_json
from funnelrec.models.multitask import Arch, MultiTaskConfig, MultiTaskModel, build_multitask
from funnelrec.rank.ctr import CTRParams, CTRRanker
from funnelrec.rank.fusion import FusionKind, fuse
from funnelrec.registry import RANK
from funnelrec.stage import Stage
from funnelrec.tasks import BASE_COLUMNS, TaskDef, default_tasks, require_column
from funnelrec.train.examples import Examples
from funnelrec.train.loop import seeded
from funnelrec.train.multitask import TaskWeighting, Weighting, train_multitask
from funnelrec.train.rows import predict
from funnelrec.types import Candidates, Query

F32 = npt.NDArray[np.float32]


class MultiTaskParams(CTRParams):
    """``CTRParams`` (features, examples, optimiser) plus the multi-task model (``arch``,
    ``bottom``, ``experts``/``expert_hidden`` (MMoE, PLE), ``shared_experts``/
    ``task_experts``/``levels`` (PLE), ``tower``, ``backbone`` (ESMM's CTR model)), the
    ``tasks``, the training ``weighting`` (``loss_weights`` for ``fixed``, ``min_weights``
    for ``mgda``) and the score ``fusion`` (task weights from ``tasks``)."""

    tasks: list[TaskDef] = Field(default_factory=default_tasks, min_length=1)
    arch: Arch = "mmoe"
    bottom: tuple[int, ...] = (128, 64)
    experts: int = Field(default=4, ge=1)
    expert_hidden: tuple[int, ...] = (64,)
    shared_experts: int = Field(default=2, ge=1)
    task_experts: int = Field(default=1, ge=1)
    levels: int = Field(default=2, ge=1)
    tower: tuple[int, ...] = (32,)
    backbone: str = "deepfm"
    weighting: Weighting = "fixed"
    loss_weights: list[float] | None = None
    min_weights: list[float] | None = None
    fusion: FusionKind = "sum"

    @model_validator(mode="after")
    def _check(self) -> MultiTaskParams:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique: {names}")
        for key in ("loss_weights", "min_weights"):
            value = getattr(self, key)
            if value is not None and len(value) != len(self.tasks):
                raise ValueError(f"{key} has {len(value)} values for {len(self.tasks)} tasks")
        if self.loss != "bce":
            raise ValueError("multi-task ranking trains with loss='bce'")
        return self


def task_labels(dataset: Dataset, examples: Examples, tasks: list[TaskDef]) -> F32:
    """``[N, T]`` labels of the examples' candidates (see module doc)."""
    base = examples.labels.astype(np.float32)
    rows = examples.candidates.row_ids()
    keys = pl.DataFrame({
        "user_idx": examples.query.user_idx[rows].astype(np.int64),
        "item_idx": examples.candidates.item_idx.astype(np.int64),
        "timestamp": examples.query.now[rows].astype(np.float64),
    })  # fmt: skip
    log = dataset.interactions
    on_time = dataset.impressions is not None and dataset.impressions.height > 0
    on = ["user_idx", "item_idx", "timestamp"] if on_time else ["user_idx", "item_idx"]
    out = np.zeros((len(base), len(tasks)), dtype=np.float32)
    for t, task in enumerate(tasks):
        if task.column in BASE_COLUMNS and task.column not in log.columns:
            out[:, t] = base
            continue
        require_column(task, log)
        values = log.select(*on, pl.col(task.column).cast(pl.Float64).alias("_v"))
        values = values.group_by(on).agg(pl.col("_v").max())
        joined = keys.join(values, on=on, how="left", maintain_order="left")
        found = joined["_v"].fill_null(0.0).to_numpy()
        out[:, t] = base * (found > task.threshold)
    return out


@RANK.register("multitask")
class MultiTaskRanker(CTRRanker):
    """Scores candidates by the fused per-task probabilities of a multi-task model."""

    kind: ClassVar[str] = "rank"
    params_model = MultiTaskParams
    example_params: ClassVar[dict[str, Any]] = {
        "epochs": 1, "dim": 4, "bottom": [8], "expert_hidden": [8], "tower": [4],
        "experts": 2, "max_neg": 20, "threads": 1,
    }  # fmt: skip

    @property
    def mt_params(self) -> MultiTaskParams:
        assert isinstance(self.params, MultiTaskParams)
        return self.params

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        p = self.mt_params
        examples = self._examples(dataset, ctx)
        labels = task_labels(dataset, examples, p.tasks)
        examples = Examples(examples.query, examples.candidates, labels)  # labels [N, T]
        builder = FeatureBuilder(p.features).fit(dataset, examples.candidates.channels)
        train, valid = self._batches(builder, examples, None)
        model = self._new_model(builder)
        n = len(p.tasks)
        weighting = TaskWeighting(n, p.weighting, p.loss_weights, p.min_weights)
        result = train_multitask(model, train, valid, self._settings(), weighting)
        self.builder_, self.model_ = builder, model.cpu().eval()
        self.fit_log_ = {
            "best_epoch": result.fit.best_epoch,
            "epochs_run": result.fit.epochs_run,
            "n_examples": len(train),
            "positive_rate": float(labels[:, 0].mean()),
        }
        self.task_log_ = {
            "tasks": [t.name for t in p.tasks],
            "positive_rate": [float(labels[:, i].mean()) for i in range(len(p.tasks))],
            "valid_auc": result.valid_auc,
            "task_weights": result.weights,
        }
        return self

    def model_config(self) -> MultiTaskConfig:  # type: ignore[override]
        p = self.mt_params
        return MultiTaskConfig(
            arch=p.arch, n_tasks=len(p.tasks), dim=p.dim, interest=p.interest, bottom=p.bottom,
            experts=p.experts, expert_hidden=p.expert_hidden, shared_experts=p.shared_experts,
            task_experts=p.task_experts, levels=p.levels, tower=p.tower, backbone=p.backbone,
            dropout=p.dropout,
        )  # fmt: skip

    def _new_model(self, builder: FeatureBuilder) -> MultiTaskModel:
        with seeded(self.params.seed):
            return build_multitask(builder.schema, self.model_config())

    def task_logits(self, query: Query, candidates: Candidates) -> F32:
        """``[N, T]`` per-task logits of every candidate (flat order)."""
        self.check_fitted()
        if len(candidates) == 0:
            return np.zeros((0, len(self.mt_params.tasks)), dtype=np.float32)
        return predict(self.model_, self.builder_.build(query, candidates)).astype(np.float32)

    def logits(self, query: Query, candidates: Candidates) -> np.ndarray[Any, Any]:
        """``[N]`` fused score (see ``rank/fusion.py``)."""
        p = self.mt_params
        weights = [t.weight for t in p.tasks]
        return fuse(self.task_logits(query, candidates), weights, p.fusion).astype(np.float32)

    def _load_state(self, directory: Path) -> None:
        Stage._load_state(self, directory)
        with np.load(directory / "features.npz", allow_pickle=False) as npz:
            tables = {k: npz[k] for k in npz.files}
        self.builder_ = FeatureBuilder.from_state(read_json(directory / "features.json"), tables)
        model = build_multitask(self.builder_.schema, self.model_config())
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        self.model_ = model.eval()
