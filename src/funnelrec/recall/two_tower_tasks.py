"""Two-tower recall trained with the funnel's task definitions: ``two_tower_tasks``.

The same ``tasks`` (``funnelrec/tasks.py``) as the multi-task pre-ranker and ranker (written
once in the funnel config) weight the training events: event ``e`` gets
``v_e = Σ_t w_t · [value_t(e) > threshold_t]`` (a ``click`` task counts every event) and is
kept in an epoch with probability ``max(v_e / max_e v_e, min_keep)``, so the recall stage
learns the fused objective the ranker ranks by (sample weighting by task, by sampling).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field
from torch import Tensor

from funnelrec.data.dataset import Dataset
from funnelrec.recall.two_tower import TwoTowerParams, TwoTowerRecall
from funnelrec.registry import RECALL
from funnelrec.tasks import BASE_COLUMNS, TaskDef, default_tasks, require_column
from funnelrec.train.data import PairBatches

F64 = npt.NDArray[np.float64]


class TwoTowerTasksParams(TwoTowerParams):
    """``TwoTowerParams`` plus ``tasks`` and ``min_keep`` (keep probability floor)."""

    tasks: list[TaskDef] = Field(default_factory=default_tasks, min_length=1)
    min_keep: float = Field(default=0.1, gt=0, le=1)


def event_keep(dataset: Dataset, tasks: list[TaskDef], min_keep: float) -> F64:
    """``[n_events]`` keep probability of each event, in ``dataset.sequences`` order."""
    log = dataset.interactions
    value = np.zeros(log.height)
    for task in tasks:
        if task.column in BASE_COLUMNS and task.column not in log.columns:
            value += task.weight
            continue
        require_column(task, log)
        hit = log[task.column].cast(float).fill_null(0.0).to_numpy() > task.threshold
        value += task.weight * hit
    keep = np.maximum(value / max(float(value.max(initial=0.0)), 1e-12), min_keep)
    return np.asarray(keep[dataset.time_order], dtype=np.float64)


@dataclass
class WeightedPairBatches(PairBatches):
    """``PairBatches`` that keep each event with its own probability ``event_prob``."""

    event_prob: F64 | None = None

    def __call__(self, epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        rows = rng.permutation(len(self.seq_items))
        if self.keep_prob is not None:
            rows = rows[rng.random(len(rows)) < self.keep_prob[self.seq_items[rows]]]
        if self.event_prob is not None:
            rows = rows[rng.random(len(rows)) < self.event_prob[rows]]
        for lo in range(0, len(rows), self.batch_size):
            yield self.batch(rows[lo : lo + self.batch_size], rng)


@RECALL.register("two_tower_tasks")
class TwoTowerTasksRecall(TwoTowerRecall):
    """Two-tower recall whose training events are sampled by the task-weighted value."""

    params_model = TwoTowerTasksParams
    example_params: ClassVar[dict[str, Any]] = {**TwoTowerRecall.example_params}

    def _batches(self, data: Dataset) -> PairBatches:
        p = self.params
        assert isinstance(p, TwoTowerTasksParams)
        base = super()._batches(data)
        fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
        return WeightedPairBatches(**fields, event_prob=event_keep(data, p.tasks, p.min_keep))
