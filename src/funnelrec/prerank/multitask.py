"""Multi-task pre-ranker ``multitask``: the ``multitask`` ranker (``rank/multitask.py``) in
the pre-rank slot, with lighter defaults (a small shared-bottom model, the same tasks)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from funnelrec.models.multitask import Arch
from funnelrec.rank.multitask import MultiTaskParams, MultiTaskRanker
from funnelrec.registry import PRERANK


class MultiTaskPrerankParams(MultiTaskParams):
    """Pre-ranker defaults: a small shared-bottom model (same tasks as the ranker)."""

    arch: Arch = "sharedbottom"
    bottom: tuple[int, ...] = (32,)
    tower: tuple[int, ...] = ()
    dim: int = Field(default=8, ge=1)


@PRERANK.register("multitask")
class MultiTaskPreranker(MultiTaskRanker):
    """The pre-rank version: same task definitions and fusion, a lighter model."""

    kind: ClassVar[str] = "prerank"
    params_model = MultiTaskPrerankParams
