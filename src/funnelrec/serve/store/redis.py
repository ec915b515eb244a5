"""Redis store: for several server processes sharing one state.

Keys (under ``prefix``): ``events`` (a stream: the whole event log); ``uevents:<user>`` (a
stream: the same log, one user's part, so ``events(user)`` reads only that user's entries);
``hist:<user>`` (a sorted set scored by timestamp, members ``"<arrival ns><index>|<item>"``,
capped at ``HISTORY_CAP`` like every store); ``seen:<user>`` (a set); ``item:<id>`` (a hash of
JSON-encoded attributes: ``HSET`` merges); ``items`` (a sorted set: first-upsert order);
``meta:<key>`` (a hash ``version``/``value``: what one process publishes to the others, e.g. a
reloaded artifact; item upserts bump ``meta:items``); ``impressions`` and ``feedback``
(lists of JSON rows: the loop's impression log and request-linked events, one ``RPUSH``
per batch).

Each write is one Lua script (``redis_scripts.py``): it checks the type of every key it will
touch before its first write and is refused as a whole when the server is out of memory, so
a batch is stored whole or not at all (``MULTI``/``EXEC`` has no rollback when a command
fails). Durability of acknowledged events is the server's: run it with ``appendonly yes`` and
``appendfsync always`` (checked at start, warned about otherwise).

Event logs written before ``uevents:<user>`` existed are still in ``events`` but not in the
per-user streams.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis

from funnelrec.serve.store.base import (
    HISTORY_CAP,
    Event,
    Feedback,
    Impression,
    ItemRecord,
    Store,
    StoreError,
    UserState,
    clean_record,
)
from funnelrec.serve.store.redis_scripts import APPEND_EVENTS, PUBLISH, UPSERT_ITEMS

log = logging.getLogger(__name__)
_PAGE = 10_000  # stream entries per XRANGE call


class RedisStore(Store):
    """Store on a Redis server (``redis://host:port/db``)."""

    def __init__(
        self,
        url: str,
        prefix: str = "funnelrec",
        history_cap: int = HISTORY_CAP,
        timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self._prefix = prefix
        self._cap = history_cap
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.ping()
        self._check_durability()
        self._append = self._client.register_script(APPEND_EVENTS)
        self._upsert = self._client.register_script(UPSERT_ITEMS)
        self._publish = self._client.register_script(PUBLISH)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StoreError(f"redis store {self.url}: {exc}") from None

    def _check_durability(self) -> None:
        try:
            conf = cast(dict[str, str], self._client.config_get("append*"))
        except redis.RedisError:
            return  # CONFIG may be disabled on managed servers
        if conf.get("appendonly") != "yes" or conf.get("appendfsync") != "always":
            log.warning(
                "redis %s runs with appendonly=%s appendfsync=%s: acknowledged events may be "
                "lost if Redis itself crashes",
                self.url,
                conf.get("appendonly"),
                conf.get("appendfsync"),
            )

    def append_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        users = list(dict.fromkeys(e.user_id for e in events))
        slot = {u: i for i, u in enumerate(users)}
        keys = [self._key("events")]
        for user in users:
            keys += [self._key("hist", user), self._key("seen", user), self._key("uevents", user)]
        args: list[str | int] = [self._cap, f"{time.time_ns():020d}", len(events)]
        for e in events:
            args += [slot[e.user_id] + 1, e.user_id, e.item_id, e.type, repr(e.timestamp)]
        with self._guard():
            self._append(keys=keys, args=args)
        return len(events)

    def user_state(self, user_id: str, history_limit: int) -> UserState:
        return self.user_states([user_id], history_limit)[0]

    def user_states(self, user_ids: Sequence[str], history_limit: int) -> list[UserState]:
        """Every user's state in one pipelined round trip."""
        with self._guard(), self._client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                limit = max(min(history_limit, self._cap), 1)
                pipe.zrange(self._key("hist", user_id), -limit, -1, withscores=True)
                pipe.smembers(self._key("seen", user_id))
            results = pipe.execute()
        out = []
        for entries, seen in zip(results[::2], results[1::2], strict=True):
            history = [(str(m).split("|", 1)[1], float(ts)) for m, ts in entries]
            out.append(UserState(history if history_limit > 0 else [], frozenset(map(str, seen))))
        return out

    def events(self, user_id: str | None = None) -> list[Event]:
        """The whole log, or one user's (read from their own stream, not filtered here)."""
        key = self._key("events") if user_id is None else self._key("uevents", user_id)
        out: list[Event] = []
        start = "-"
        with self._guard():
            while True:  # pages: one huge reply never blocks the server
                page = cast(
                    list[tuple[str, dict[str, str]]],
                    self._client.xrange(key, min=start, count=_PAGE),
                )
                out += [Event(f["user"], f["item"], f["type"], float(f["ts"])) for _, f in page]
                if len(page) < _PAGE:
                    return out
                start = "(" + page[-1][0]

    def count_events(self) -> int:
        with self._guard():
            return int(self._client.xlen(self._key("events")))

    def upsert_items(self, items: Sequence[ItemRecord]) -> None:
        keys = [self._key("items"), self._key("meta", "items")]
        args: list[str | float | int] = [time.time(), len(items)]
        for record in items:
            data = clean_record(record)
            item_id = str(data.pop("item_id"))
            keys.append(self._key("item", item_id))
            args += [item_id, len(data)]
            for name, value in data.items():
                args += [name, json.dumps(value, ensure_ascii=False)]
        with self._guard():
            self._upsert(keys=keys, args=args)

    def items(self) -> list[ItemRecord]:
        with self._guard():
            ids = cast(list[str], self._client.zrange(self._key("items"), 0, -1))
            with self._client.pipeline(transaction=False) as pipe:
                for item_id in ids:
                    pipe.hgetall(self._key("item", item_id))
                hashes: list[dict[str, str]] = pipe.execute()
        return [_decode(i, h) for i, h in zip(ids, hashes, strict=True)]

    def publish(self, key: str, value: str = "") -> int:
        with self._guard():
            return int(self._publish(keys=[self._key("meta", key)], args=[value]))

    def published(self, key: str) -> tuple[int, str | None]:
        with self._guard():
            version, value = cast(
                list[str | None], self._client.hmget(self._key("meta", key), ["version", "value"])
            )
        return int(version or 0), value

    def append_impressions(self, rows: Sequence[Impression]) -> int:
        """One ``RPUSH`` of JSON rows to ``impressions`` (a list)."""
        with self._guard():
            if rows:
                self._client.rpush(self._key("impressions"), *[_dump(vars(r)) for r in rows])
        return len(rows)

    def impressions(self) -> list[Impression]:
        with self._guard():
            raw = cast(list[str], self._client.lrange(self._key("impressions"), 0, -1))
        return [Impression(**json.loads(r)) for r in raw]

    def append_feedback(self, rows: Sequence[Feedback]) -> int:
        """One ``RPUSH`` of JSON rows to ``feedback`` (a list)."""
        with self._guard():
            if rows:
                encoded = [_dump({"request_id": f.request_id, **vars(f.event)}) for f in rows]
                self._client.rpush(self._key("feedback"), *encoded)
        return len(rows)

    def feedback(self) -> list[Feedback]:
        with self._guard():
            raw = cast(list[str], self._client.lrange(self._key("feedback"), 0, -1))
        out = []
        for r in map(json.loads, raw):
            out.append(Feedback(r.pop("request_id"), Event(**r)))
        return out

    def ping(self) -> None:
        with self._guard():
            self._client.ping()

    def close(self) -> None:
        self._client.close()


def _decode(item_id: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"item_id": item_id, **{k: json.loads(v) for k, v in fields.items()}}


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False)
