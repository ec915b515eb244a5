"""Shared fixtures: a small synthetic world and its loo split (built once per session)."""

from __future__ import annotations

from pathlib import Path

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
