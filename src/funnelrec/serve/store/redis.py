"""Redis store: for several server processes sharing one state.

Keys (under ``prefix``): ``events`` (a stream: the event log); ``hist:<user>`` (a sorted set
scored by timestamp, members ``"<arrival ns>|<item>"``, capped at ``history_cap``);
``seen:<user>`` (a set); ``item:<id>`` (a hash of JSON-encoded attributes: ``HSET`` merges);
``items`` (a sorted set: first-upsert order); ``meta:<key>`` (a hash ``version``/``value``:
what one process publishes to the others, e.g. a reloaded artifact; item upserts bump
``meta:items``); ``impressions`` and ``feedback`` (lists of JSON rows: the loop's
impression log and request-linked events). Each call's writes go in one ``MULTI``/``EXEC``
transaction. Durability of acknowledged events is the server's: run it with
``appendonly yes`` and ``appendfsync always`` (checked at start, warned about otherwise).
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
    Event,
    Feedback,
    Impression,
    ItemRecord,
    Store,
    StoreError,
    UserState,
    clean_record,
)

log = logging.getLogger(__name__)


class RedisStore(Store):
    """Store on a Redis server (``redis://host:port/db``)."""

    def __init__(
        self, url: str, prefix: str = "funnelrec", history_cap: int = 1000, timeout_s: float = 2.0
    ) -> None:
        self.url = url
        self._prefix = prefix
        self._cap = history_cap
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.ping()
        self._check_durability()

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
        arrival = time.time_ns()
        with self._guard(), self._client.pipeline(transaction=True) as pipe:
            for n, e in enumerate(events):
                fields = {
                    "user": e.user_id,
                    "item": e.item_id,
                    "type": e.type,
                    "ts": repr(e.timestamp),
                }
                pipe.xadd(self._key("events"), fields)  # type: ignore[arg-type]
                member = f"{arrival + n:020d}|{e.item_id}"
                pipe.zadd(self._key("hist", e.user_id), {member: e.timestamp})
                pipe.sadd(self._key("seen", e.user_id), e.item_id)
            for user in {e.user_id for e in events}:
                pipe.zremrangebyrank(self._key("hist", user), 0, -self._cap - 1)
            pipe.execute()
        return len(events)

    def user_state(self, user_id: str, history_limit: int) -> UserState:
        return self.user_states([user_id], history_limit)[0]

    def user_states(self, user_ids: Sequence[str], history_limit: int) -> list[UserState]:
        """Every user's state in one pipelined round trip."""
        with self._guard(), self._client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zrange(self._key("hist", user_id), -max(history_limit, 1), -1, withscores=True)
                pipe.smembers(self._key("seen", user_id))
            results = pipe.execute()
        out = []
        for entries, seen in zip(results[::2], results[1::2], strict=True):
            history = [(str(m).split("|", 1)[1], float(ts)) for m, ts in entries]
            out.append(UserState(history if history_limit > 0 else [], frozenset(map(str, seen))))
        return out

    def events(self, user_id: str | None = None) -> list[Event]:
        with self._guard():
            entries = cast(
                list[tuple[str, dict[str, str]]], self._client.xrange(self._key("events"))
            )
        out = [Event(f["user"], f["item"], f["type"], float(f["ts"])) for _, f in entries]
        return [e for e in out if user_id is None or e.user_id == user_id]

    def count_events(self) -> int:
        with self._guard():
            return int(self._client.xlen(self._key("events")))

    def upsert_items(self, items: Sequence[ItemRecord]) -> None:
        now = time.time()
        with self._guard(), self._client.pipeline(transaction=True) as pipe:
            for record in items:
                data = clean_record(record)
                item_id = str(data.pop("item_id"))
                pipe.zadd(self._key("items"), {item_id: now}, nx=True)
                if data:
                    encoded = {k: json.dumps(v, ensure_ascii=False) for k, v in data.items()}
                    pipe.hset(self._key("item", item_id), mapping=encoded)  # type: ignore[arg-type]
            pipe.hincrby(self._key("meta", "items"), "version", 1)
            pipe.execute()

    def items(self) -> list[ItemRecord]:
        with self._guard():
            ids = cast(list[str], self._client.zrange(self._key("items"), 0, -1))
            with self._client.pipeline(transaction=False) as pipe:
                for item_id in ids:
                    pipe.hgetall(self._key("item", item_id))
                hashes: list[dict[str, str]] = pipe.execute()
        return [_decode(i, h) for i, h in zip(ids, hashes, strict=True)]

    def publish(self, key: str, value: str = "") -> int:
        with self._guard(), self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("meta", key), "value", value)
            pipe.hincrby(self._key("meta", key), "version", 1)
            return int(pipe.execute()[1])

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
