"""``FitContext``: what a stage may use from the funnel it is fitted in.

Every stage is fitted with ``fit(dataset, ctx=None)``. Outside a funnel ``ctx`` is ``None``
and a stage falls back to what the dataset alone gives (``ItemCF().fit(ds)`` works). Inside a
funnel (``Funnel.fit``) the context carries the fields documented on ``FitContext``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover - typing only (train sits above the core modules)
    from funnelrec.data.dataset import Dataset
    from funnelrec.train.examples import Examples
    from funnelrec.types import Candidates, Query

Stacking = Literal["oof", "in-sample"]


@dataclass(frozen=True)
class FitContext:
    """Funnel state handed to ``Stage.fit``; every field is optional.

    Attributes:
        channels: the recall channels fitted so far (on the whole training part), by id.
        retrieve: ``query -> Candidates``: the funnel's merged recall with those channels
            (``B`` queries in, ``B`` ragged rows out).
        examples: ``() -> Examples``: the labelled training lists for learned stages after
            recall (out-of-fold by default: channels fitted on each user's history before a
            cut, retrieving for the cut point, labelled by the held-out items; see
            ``pipeline``).
        valid_examples: ``() -> Examples``: the funnel's merged recall for the validation
            users, labelled by their validation items (early stopping on the serving-time
            view).
        lists: ``query -> Candidates``: the lists the funnel feeds this (re-ranking) stage.
        valid: the validation part (never the test part).
        tasks: the multi-task objective definitions of the config (``None``: single task).
        stacking: how ``examples`` were built (``"oof"`` or ``"in-sample"``).
        teacher: the funnel's fitted ranker (a ``Scorer``), handed to the pre-ranker, which
            is fitted after it, so a pre-ranker can distil what the ranker would rank on top.
        refit: ``True`` when refitting after item upserts (learned weights are kept).
    """

    channels: Mapping[str, Any] = field(default_factory=dict)
    retrieve: Callable[[Query], Candidates] | None = None
    examples: Callable[[], Examples] | None = None
    valid_examples: Callable[[], Examples | None] | None = None
    lists: Callable[[Query], Candidates] | None = None
    valid: Dataset | None = None
    tasks: list[dict[str, Any]] | None = None
    stacking: Stacking = "oof"
    teacher: Any = None
    refit: bool = False


def fit_stage(stage: Any, dataset: Dataset, ctx: FitContext | None) -> Any:
    """``stage.fit(dataset, ctx)``; stages written against the older ``fit(dataset)``
    signature (no context parameter) are called without it."""
    params = inspect.signature(stage.fit).parameters
    if len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        return stage.fit(dataset, ctx)
    return stage.fit(dataset)
