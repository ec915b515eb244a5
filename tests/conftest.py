"""Shared fixtures: a small synthetic world and its loo split (built once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split, split

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def world() -> Dataset:
    from funnelrec.data.synthetic import generate

    return generate(n_users=400, n_items=300, n_interactions=12_000, seed=7)


@pytest.fixture(scope="session")
def world_split(world: Dataset) -> Split:
    return split(world, "loo")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def softmax_precisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``precision`` of every ``sampled_softmax_loss`` call made while the test runs (as
    ``RetrievalLoss`` and ``NextItemLoss`` make them: positionally)."""
    from funnelrec.train import losses, sequence

    seen: list[str] = []
    for module in (losses, sequence):

        def spy(*args: Any, real: Any = module.sampled_softmax_loss) -> Any:
            seen.append(args[6])
            return real(*args)

        monkeypatch.setattr(module, "sampled_softmax_loss", spy)
    return seen
