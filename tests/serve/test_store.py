"""Store contract over SQLite and a real Redis server: atomic batches, histories, seen sets,
item merges, failures as ``StoreError``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from funnelrec.serve.store.base import Event, Store, StoreError, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        url = request.getfixturevalue("redis_url")
        opened = open_store(url, prefix=request.getfixturevalue("redis_prefix"))
    yield opened
    opened.close()


def test_events_history_and_seen(store: Store) -> None:
    store.append_events(
        [
            Event("u1", "b", "click", 20.0),
            Event("u1", "a", "click", 10.0),
            Event("u2", "c", "like", 5.0),
            Event("u1", "b", "purchase", 30.0),
        ]
    )
    state = store.user_state("u1", history_limit=10)
    assert state.history == [("a", 10.0), ("b", 20.0), ("b", 30.0)]  # sorted by time
    assert state.seen == {"a", "b"}
    assert store.user_state("u1", history_limit=2).history == [("b", 20.0), ("b", 30.0)]
    assert store.user_state("nobody", 10).history == []
    batched = store.user_states(["u1", "nobody", "u2"], history_limit=2)
    assert batched == [store.user_state(u, 2) for u in ("u1", "nobody", "u2")]
    assert store.user_state("u1", history_limit=0).history == []
    assert store.count_events() == 4
    assert [e.item_id for e in store.events("u1")] == ["b", "a", "b"]  # arrival order


def test_items_merge_in_first_upsert_order(store: Store) -> None:
    store.upsert_items([{"item_id": "x", "category": "A", "tags": ["t"]}, {"item_id": "y"}])
    store.upsert_items([{"item_id": "x", "category": "B", "title": None, "year": 2001}])
    assert store.items() == [
        {"item_id": "x", "category": "B", "tags": ["t"], "year": 2001},
        {"item_id": "y"},
    ]


def test_sqlite_batch_is_all_or_nothing(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.append_events([Event("u", "a", "click", 1.0)])
    with pytest.raises(StoreError, match="CHECK constraint"):
        store.append_events([Event("u", "b", "click", 2.0), Event("u", "c", "click", -1.0)])
    assert store.count_events() == 1
    assert store.user_state("u", 10).seen == {"a"}
    store.close()


def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = open_store(url)
    first.append_events([Event("u", "a", "click", 1.0)])
    first.close()
    second = open_store(url)
    assert second.count_events() == 1
    second.close()


def test_bad_urls_and_unreachable_redis() -> None:
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("postgres://x")
    with pytest.raises(StoreError, match="redis store"):
        open_store("redis://127.0.0.1:1/0")
