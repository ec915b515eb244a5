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


def test_model_bases_are_abstract_and_a_missing_hook_fails_at_creation() -> None:
    from funnelrec.models.ctr.base import CTRModel
    from funnelrec.models.layers import EmbeddingModel
    from funnelrec.models.sequence.base import SequenceEncoder
    from funnelrec.models.transe import KGEmbedding

    expected = {
        EmbeddingModel: {"user_vectors", "item_vectors"},
        SequenceEncoder: {"encode"},
        CTRModel: {"score"},
        KGEmbedding: {"project"},
    }
    for base, hooks in expected.items():
        assert hooks <= set(base.__abstractmethods__), base  # type: ignore[attr-defined]

    class Forgetful(EmbeddingModel):
        def user_vectors(self, batch):  # type: ignore[no-untyped-def]
            return batch["user"]

    with pytest.raises(TypeError, match="abstract"):
        Forgetful()  # type: ignore[abstract]


def test_every_model_in_the_package_is_concrete() -> None:
    import importlib
    import pkgutil

    import funnelrec.models as models
    from funnelrec.models.layers import EmbeddingModel

    for info in pkgutil.walk_packages(models.__path__, "funnelrec.models."):
        importlib.import_module(info.name)
    bases = {"EmbeddingModel", "SequenceEncoder", "CTRModel", "MultiTaskModel", "KGEmbedding"}

    def subclasses(cls: type) -> list[type]:
        return [s for c in cls.__subclasses__() for s in (c, *subclasses(c))]

    import torch.nn as nn

    leftover = [
        c.__qualname__
        for c in subclasses(nn.Module)
        if c.__module__.startswith("funnelrec.")
        and c.__name__ not in bases
        and not c.__qualname__.startswith("test_")
        and inspect.isabstract(c)
    ]
    assert leftover == []
    assert inspect.isabstract(EmbeddingModel)
