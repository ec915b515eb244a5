"""Crash safety and store failures: acknowledged events survive ``kill -9`` of the server
process; a failing store answers 503 and writes nothing."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from funnelrec.serve.store.base import open_store
from tests.serve.conftest import Live, free_port, process_server, redis_server, thread_server

Serve = Callable[..., Live]


def _send_batches(url: str, worker: int, acked: list[str], stop: threading.Event) -> None:
    """Post 5-event batches for fresh users until stopped or the server dies."""
    with httpx.Client(base_url=url, timeout=5.0, verify=False) as c:
        n = 0
        while not stop.is_set():
            user = f"dur-{worker}-{n}"
            events = [{"user_id": user, "item_id": f"i{j:04d}"} for j in range(5)]
            try:
                r = c.post("/events", json={"events": events})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                acked.append(user)
            n += 1


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_acknowledged_events_survive_kill_9(
    backend: str, artifact: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        store = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        store = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/3"
        open_store(store).close()  # reachable
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    stop = threading.Event()
    with process_server(artifact, store, port) as proc:
        senders = [
            threading.Thread(target=_send_batches, args=(url, w, acked, stop)) for w in range(4)
        ]
        for s in senders:
            s.start()
        while len(acked) < 60:  # 300 events acknowledged, more in flight
            assert proc.poll() is None
            threading.Event().wait(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for s in senders:
            s.join()
    confirmed = list(acked)
    with thread_server(artifacts=artifact, store=store) as restarted:  # same store, new server
        stored = {e.user_id for e in restarted.state.store.events()}
        assert set(confirmed) <= stored
        with restarted.client() as c:
            slate = c.get("/recommend", params={"user_id": confirmed[0], "k": 50}).json()
        assert not {"i0000", "i0001", "i0002"} & {i["item_id"] for i in slate["items"]}


def test_failing_sqlite_store_gives_503_and_no_partial_write(serve: Serve, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    live = serve(store=f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:  # fail on the 3rd event of a batch
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.user_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    events = [{"user_id": u, "item_id": "i0001"} for u in ("a", "b", "poison", "d")]
    with live.client() as c:
        r = c.post("/events", json={"events": events})
    assert r.status_code == 503
    assert (
        "injected failure" in r.json()["message"] and "nothing was written" in r.json()["message"]
    )
    assert live.state.store.count_events() == 0
    assert live.state.store.user_state("a", 10).seen == frozenset()


def test_redis_outage_gives_503(serve: Serve, tmp_path: Path) -> None:
    with redis_server(tmp_path) as (url, proc):
        live = serve(store=url)
        with live.client() as c:
            assert (
                c.post(
                    "/events", json={"events": [{"user_id": "a", "item_id": "i0001"}]}
                ).status_code
                == 200
            )
            proc.kill()
            proc.wait(timeout=10)
            down = c.post("/events", json={"events": [{"user_id": "a", "item_id": "i0002"}]})
            health = c.get("/health")
            rec = c.get("/recommend", params={"user_id": "a"})
    assert down.status_code == 503 and "redis store" in down.json()["message"]
    assert health.status_code == 503 and rec.status_code == 503
