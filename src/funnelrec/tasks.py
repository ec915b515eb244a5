"""Objective (task) definitions shared by every stage.

A ``TaskDef`` names one objective (click, like, purchase...): its label ``column`` of the
interaction log, the ``threshold`` above which it is positive, and its ``weight`` in a fused
score. The same objects are handed to the multi-task pre-ranker and ranker and to the
``two_tower_tasks`` recall channel (written once, ``[[tasks]]``, in a funnel config), so they
live here, below every stage, rather than inside one stage package.
"""

from __future__ import annotations

import polars as pl
from pydantic import Field

from funnelrec.errors import ConfigError
from funnelrec.stage import Params

BASE_COLUMNS = ("click", "clicked")
"""Columns naming the base label (every event / impression click) when the log lacks them."""


class TaskDef(Params):
    """One objective: ``column`` of the interaction log (``click``/``clicked``: the base
    label), positive when the value ``> threshold``; ``weight`` in the fused score."""

    name: str
    column: str
    threshold: float = 0.5
    weight: float = Field(default=1.0, ge=0)


def default_tasks() -> list[TaskDef]:
    """The default objectives: ``click``, ``like``, ``purchase`` (weight 1 each)."""
    return [
        TaskDef(name="click", column="click"),
        TaskDef(name="like", column="like"),
        TaskDef(name="purchase", column="purchase"),
    ]


def require_column(task: TaskDef, log: pl.DataFrame) -> None:
    """A ``ConfigError`` naming the task and its column when ``log`` lacks the column."""
    if task.column not in log.columns:
        raise ConfigError(
            f"task {task.name!r}: unknown label column {task.column!r}; the interaction "
            f"log has {log.columns}"
        )
