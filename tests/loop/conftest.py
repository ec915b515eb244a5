"""Loop fixtures: a synthetic world's log in a SQLite serving store, and funnel configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from funnelrec.config import parse_config, save_config
from funnelrec.data.dataset import Dataset
from funnelrec.data.synthetic import generate
from funnelrec.serve.store.base import Event, open_store

WORLD = "synthetic:n_users=300,n_items=200,n_interactions=6000"


def config_dict(channels: tuple[str, ...]) -> dict[str, Any]:
    return {
        "k": 10,
        "recall": {"total": 100, "channels": [{"name": n} for n in channels]},
        "prerank": {"keep": 80},
        "rank": {"keep": 40},
        "rerank": [{"name": "seen_filter"}],
    }


def write_config(path: Path, channels: tuple[str, ...]) -> Path:
    save_config(parse_config(config_dict(channels)), path)
    return path


@pytest.fixture(scope="session")
def world() -> Dataset:
    return generate(n_users=300, n_items=200, n_interactions=6000)


@pytest.fixture(scope="session")
def world_store(world: Dataset, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding the whole world's log as events (read-only for tests)."""
    path = tmp_path_factory.mktemp("loop") / "world.db"
    a = world.arrays
    users = world.user_ids.external(a.user_idx)
    items = world.item_ids.external(a.item_idx)
    store = open_store(f"sqlite:///{path}")
    store.append_events(
        [
            Event(str(u), str(i), "click", float(t))
            for u, i, t in zip(users, items, a.timestamp.tolist(), strict=True)
        ]
    )
    store.close()
    return f"sqlite:///{path}"
