"""SQLite store (the embedded default): WAL journal with ``synchronous=FULL`` on every
connection, so a commit fsyncs the WAL: a batch is on disk when ``append_events`` returns and
survives a ``kill -9`` and a power cut (``tests/serve/test_durability.py`` checks both: the
kill, and the pragmas of the live connections).

One writer connection behind a lock (every write is one ``BEGIN IMMEDIATE`` transaction) and
one reader connection per thread (WAL readers never wait for the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts REAL NOT NULL CHECK (ts >= 0)
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, ts, seq);
CREATE TABLE IF NOT EXISTS seen (
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (user_id, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS impressions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    score REAL NOT NULL,
    generation INTEGER NOT NULL,
    arm TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS event_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    value TEXT NOT NULL
);
"""
_PUBLISH = (
    "INSERT INTO meta (key, version, value) VALUES (?, 1, ?) ON CONFLICT (key) "
    "DO UPDATE SET version = meta.version + 1, value = excluded.value RETURNING version"
)

_HISTORIES = """
SELECT user_id, item_id, ts FROM (
    SELECT user_id, item_id, ts, seq,
           row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, seq DESC) AS newest
    FROM events WHERE user_id IN ({users})
) WHERE newest <= ? ORDER BY user_id, ts, seq
"""
_CHUNK = 500  # users per statement


class SQLiteStore(Store):
    """Store in one SQLite file (``:memory:`` for tests: one shared connection)."""

    def __init__(self, path: str) -> None:
        self.url = f"sqlite:///{path}"
        self._path = path
        self._memory = path == ":memory:"
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer = self._connect()
        with self._guard(), self._lock:
            self._writer.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        with self._guard():
            conn = sqlite3.connect(
                self._path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self._path}: {exc}") from None

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._guard(), self._lock:
                yield self._writer
            return
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        with self._guard():
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE … COMMIT``; any failure rolls the whole call back."""
        with self._guard(), self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def append_events(self, events: Sequence[Event]) -> int:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO events (user_id, item_id, type, ts) VALUES (?, ?, ?, ?)",
                [(e.user_id, e.item_id, e.type, e.timestamp) for e in events],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO seen (user_id, item_id) VALUES (?, ?)",
                [(e.user_id, e.item_id) for e in events],
            )
        return len(events)

    def user_state(self, user_id: str, history_limit: int) -> UserState:
        return self.user_states([user_id], history_limit)[0]

    def user_states(self, user_ids: Sequence[str], history_limit: int) -> list[UserState]:
        """Two statements per 500 users (few GIL hand-overs for a whole batch)."""
        history: dict[str, list[tuple[str, float]]] = {u: [] for u in user_ids}
        seen: dict[str, set[str]] = {u: set() for u in user_ids}
        unique = list(history)
        with self._reader() as conn:
            for lo in range(0, len(unique), _CHUNK):
                chunk = unique[lo : lo + _CHUNK]
                marks = ",".join("?" * len(chunk))
                limit = min(history_limit, HISTORY_CAP)
                for u, i, t in conn.execute(_HISTORIES.format(users=marks), (*chunk, limit)):
                    history[u].append((str(i), float(t)))
                sql = f"SELECT user_id, item_id FROM seen WHERE user_id IN ({marks})"
                for u, i in conn.execute(sql, chunk):
                    seen[u].add(str(i))
        return [UserState(history[u], frozenset(seen[u])) for u in user_ids]

    def events(self, user_id: str | None = None) -> list[Event]:
        sql = "SELECT user_id, item_id, type, ts FROM events"
        args: tuple[str, ...] = ()
        if user_id is not None:
            sql, args = sql + " WHERE user_id = ?", (user_id,)
        with self._reader() as conn:
            rows = conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [Event(str(u), str(i), str(t), float(ts)) for u, i, t, ts in rows]

    def count_events(self) -> int:
        with self._reader() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def upsert_items(self, items: Sequence[ItemRecord]) -> None:
        rows = []
        for record in items:
            data = clean_record(record)
            item_id = str(data.pop("item_id"))
            rows.append((item_id, json.dumps(data, ensure_ascii=False)))
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO items (item_id, data) VALUES (?, ?) ON CONFLICT (item_id) "
                "DO UPDATE SET data = json_patch(items.data, excluded.data)",
                rows,
            )
            conn.execute(_PUBLISH, ("items", "")).fetchall()

    def publish(self, key: str, value: str = "") -> int:
        with self._transaction() as conn:
            return int(conn.execute(_PUBLISH, (key, value)).fetchone()[0])

    def published(self, key: str) -> tuple[int, str | None]:
        with self._reader() as conn:
            row = conn.execute("SELECT version, value FROM meta WHERE key = ?", (key,)).fetchone()
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def items(self) -> list[ItemRecord]:
        with self._reader() as conn:
            rows = conn.execute("SELECT item_id, data FROM items ORDER BY rowid").fetchall()
        return [{"item_id": str(i), **json.loads(d)} for i, d in rows]

    def append_impressions(self, rows: Sequence[Impression]) -> int:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO impressions (request_id, user_id, item_id, position, score, "
                "generation, arm, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_impression_row(r) for r in rows],
            )
        return len(rows)

    def impressions(self) -> list[Impression]:
        sql = "SELECT request_id, user_id, item_id, position, score, generation, arm, ts"
        with self._reader() as conn:
            rows = conn.execute(sql + " FROM impressions ORDER BY seq").fetchall()
        return [Impression(*row) for row in rows]

    def append_feedback(self, rows: Sequence[Feedback]) -> int:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO event_requests (request_id, user_id, item_id, type, ts) "
                "VALUES (?, ?, ?, ?, ?)",
                [(f.request_id, *_event_row(f.event)) for f in rows],
            )
        return len(rows)

    def feedback(self) -> list[Feedback]:
        sql = "SELECT request_id, user_id, item_id, type, ts FROM event_requests ORDER BY seq"
        with self._reader() as conn:
            rows = conn.execute(sql).fetchall()
        return [Feedback(r, Event(u, i, t, float(ts))) for r, u, i, t, ts in rows]

    def ping(self) -> None:
        with self._reader() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            for conn in [*self._readers, self._writer]:
                conn.close()
            self._readers.clear()


def _event_row(e: Event) -> tuple[str, str, str, float]:
    return (e.user_id, e.item_id, e.type, e.timestamp)


def _impression_row(r: Impression) -> tuple[str, str, str, int, float, int, str, float]:
    """An impression's columns (``dataclasses.astuple`` deep-copies: 10x slower)."""
    return (r.request_id, r.user_id, r.item_id, r.position, r.score, r.generation, r.arm,
            r.timestamp)  # fmt: skip
