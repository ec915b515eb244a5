"""Store contract over SQLite and a real Redis server: atomic batches, histories, seen sets,
item merges, failures as ``StoreError``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funnelrec.serve.store.base import HISTORY_CAP, Event, Store, StoreError, open_store


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


def test_history_is_capped_the_same_in_every_store(store: Store) -> None:
    n = HISTORY_CAP + 5
    store.append_events([Event("u", f"i{j}", "click", float(j)) for j in range(n)])
    history = store.user_state("u", history_limit=n + 100).history
    assert len(history) == HISTORY_CAP
    assert history[0] == ("i5", 5.0) and history[-1] == (f"i{n - 1}", float(n - 1))
    assert store.count_events() == n  # the log itself is complete


def test_redis_batch_is_all_or_nothing(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = open_store(redis_url, prefix=redis_prefix)
    client = redis.Redis.from_url(redis_url)
    client.set(f"{redis_prefix}:seen:bad", "a string, not a set")  # the 2nd user's write fails
    batch = [Event("good", "a", "click", 1.0), Event("bad", "b", "click", 2.0)]
    with pytest.raises(StoreError, match="WRONGTYPE"):
        store.append_events(batch)
    assert store.count_events() == 0
    assert store.user_state("good", 10) == store.user_state("nobody", 10)
    client.set(f"{redis_prefix}:item:bad", "a string, not a hash")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        store.upsert_items([{"item_id": "ok", "title": "A"}, {"item_id": "bad", "title": "B"}])
    assert store.items() == [] and store.published("items") == (0, None)
    store.close()


def test_redis_events_of_a_user_read_only_that_user(redis_url: str, redis_prefix: str) -> None:
    store = open_store(redis_url, prefix=redis_prefix)
    store.append_events([Event(f"u{j % 50}", "a", "click", float(j)) for j in range(500)])
    read: list[str] = []
    client = store._client  # type: ignore[attr-defined]
    original = client.xrange

    def recording(key: str, *args: Any, **kwargs: Any) -> Any:
        entries = original(key, *args, **kwargs)
        read.extend([key] * len(entries))
        return entries

    client.xrange = recording
    events = store.events("u7")
    assert [e.timestamp for e in events] == [float(j) for j in range(7, 500, 50)]
    assert len(read) == 10 and set(read) == {f"{redis_prefix}:uevents:u7"}
    assert len(store.events()) == 500
    store.close()


def test_sqlite_commits_durably(tmp_path: Path) -> None:
    """Fails if the store stops committing durably: the kill -9 test cannot tell (the page
    cache survives a killed process, so ``synchronous=OFF`` passes it too)."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.append_events([Event("u", "a", "click", 1.0)])
    store.user_state("u", 10)  # opens this thread's reader connection
    connections = [store._writer, *store._readers]  # type: ignore[attr-defined]
    assert len(connections) == 2
    for conn in connections:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync per commit
    store.close()
