"""The stage base classes declare their contract with ``abc``: a subclass that forgets a
hook cannot be created, and every registered stage implements all of them."""

from __future__ import annotations

import inspect

import pytest

from funnelrec.rank.base import Scorer
from funnelrec.recall.base import RecallChannel
from funnelrec.registry import REGISTRIES
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Stage


@pytest.mark.parametrize(
    ("base", "hooks"),
    [
        (Stage, {"fit"}),
        (RecallChannel, {"fit", "_retrieve"}),
        (Scorer, {"fit", "_score"}),
        (Reranker, {"fit", "_rerank"}),
    ],
)
def test_bases_are_abstract(base: type, hooks: set[str]) -> None:
    assert hooks <= set(base.__abstractmethods__)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="abstract"):
        base()


def test_every_registered_stage_is_concrete() -> None:
    names = [(kind, n) for kind, reg in REGISTRIES.items() for n in reg.names()]
    assert {kind for kind, _ in names} == {"recall", "prerank", "rank", "rerank"}
    abstract = [
        (kind, name, sorted(REGISTRIES[kind].get(name).__abstractmethods__))
        for kind, name in names
        if inspect.isabstract(REGISTRIES[kind].get(name))
    ]
    assert abstract == []
