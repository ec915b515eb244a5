"""``Store``: the serving state that outlives a process — event log, per-user history and seen
set, item upserts — behind one interface (SQLite embedded default, Redis when shared).

Ids are stored as strings (``str(external_id)``). Every write is one transaction: a batch is
stored whole or not at all, and a method returns only once the write is durable. Failures
raise ``StoreError`` (HTTP 503).

The event log is complete in every store; for serving, a user's history is the latest
``HISTORY_CAP`` events (``user_state`` never returns more, whatever ``history_limit`` asks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from funnelrec.errors import FunnelError

HISTORY_CAP = 1000  # latest events per user that serving reads (same in every store)
JsonValue = Any
ItemRecord = dict[str, JsonValue]


class StoreError(FunnelError):
    """The store is unreachable or refused a write (nothing of the failed call was written)."""


@dataclass(frozen=True)
class Event:
    """One user-item event (``timestamp`` in seconds since the epoch)."""

    user_id: str
    item_id: str
    type: str
    timestamp: float


@dataclass(frozen=True)
class Impression:
    """One item shown in one ``/recommend`` response (``position`` 0-based; ``arm``: the
    rollout arm that served it, ``"control"`` without a rollout)."""

    request_id: str
    user_id: str
    item_id: str
    position: int
    score: float
    generation: int
    arm: str
    timestamp: float


@dataclass(frozen=True)
class Feedback:
    """An event that names the ``/recommend`` response (``request_id``) it answers."""

    request_id: str
    event: Event


@dataclass(frozen=True)
class UserState:
    """A user's short-term state: the latest events (oldest first) and every item seen."""

    history: list[tuple[str, float]] = field(default_factory=list)
    seen: frozenset[str] = frozenset()


class Store(ABC):
    """Durable serving state; implementations are safe to call from several threads."""

    url: str

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> int:
        """Store a batch atomically and durably; returns the number stored."""

    @abstractmethod
    def user_state(self, user_id: str, history_limit: int) -> UserState:
        """The user's last ``min(history_limit, HISTORY_CAP)`` events (sorted by time) and
        full seen set."""

    def user_states(self, user_ids: Sequence[str], history_limit: int) -> list[UserState]:
        """``user_state`` of several users (networked stores answer in one round trip)."""
        return [self.user_state(u, history_limit) for u in user_ids]

    @abstractmethod
    def events(self, user_id: str | None = None) -> list[Event]:
        """The event log in arrival order (one user's, or everyone's)."""

    @abstractmethod
    def count_events(self) -> int:
        """Number of events in the log."""

    @abstractmethod
    def upsert_items(self, items: Sequence[ItemRecord]) -> None:
        """Merge item records (``item_id`` plus attributes; ``None`` values are ignored)."""

    @abstractmethod
    def items(self) -> list[ItemRecord]:
        """Every upserted item (merged record), in order of first upsert."""

    def publish(self, key: str, value: str = "") -> int:
        """Record ``value`` under ``key`` and bump the key's version; returns the new version.

        Shared stores share it with every server process (how workers learn of a reload);
        this default keeps it in the process.
        """
        table: dict[str, tuple[int, str]] = self.__dict__.setdefault("_published", {})
        version = table.get(key, (0, ""))[0] + 1
        table[key] = (version, value)
        return version

    def published(self, key: str) -> tuple[int, str | None]:
        """``(version, value)`` of ``key`` (``(0, None)`` when never published). Item upserts
        bump the ``items`` key."""
        table: dict[str, tuple[int, str]] = self.__dict__.get("_published", {})
        version, value = table.get(key, (0, None))
        return version, value

    # -- the loop (impression log and request-linked events; in-process by default) --------
    def append_impressions(self, rows: Sequence[Impression]) -> int:
        """Store a batch of impressions atomically; returns the number stored."""
        log: list[Impression] = self.__dict__.setdefault("_impressions", [])
        log.extend(rows)
        return len(rows)

    def impressions(self) -> list[Impression]:
        """Every logged impression, in arrival order."""
        return list(self.__dict__.get("_impressions", []))

    def append_feedback(self, rows: Sequence[Feedback]) -> int:
        """Store request links of events (the events themselves go to ``append_events``)."""
        log: list[Feedback] = self.__dict__.setdefault("_feedback", [])
        log.extend(rows)
        return len(rows)

    def feedback(self) -> list[Feedback]:
        """Every request-linked event, in arrival order."""
        return list(self.__dict__.get("_feedback", []))

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` unless the store answers."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def open_store(url: str, **options: Any) -> Store:
    """Open a store from a URL (SQLAlchemy style): ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` (throwaway), or
    ``redis://host:port/db``."""
    if url.startswith("sqlite:///"):
        from funnelrec.serve.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///") or ":memory:")
    if url.startswith(("redis://", "rediss://", "unix://")):
        from funnelrec.serve.store.redis import RedisStore

        return RedisStore(url, **options)
    raise StoreError(
        f"unsupported store URL {url!r}: use sqlite:///path.db or redis://host:port/db"
    )


def clean_record(record: ItemRecord) -> ItemRecord:
    """The record without ``None`` values (absent = unchanged)."""
    return {k: v for k, v in record.items() if v is not None}
