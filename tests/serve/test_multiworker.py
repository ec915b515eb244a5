"""Several server processes sharing one real Redis: any process answers any user with the
latest events, and item upserts and reloads made through one reach the others.

Server ``a`` runs ``funnelrec serve --workers 2`` (two worker processes behind one port, the
connections dealt to them in turn by ``serve.balancer``), server ``b`` a single process on
another port; all three share the store.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from funnelrec.serve.store.base import open_store
from funnelrec.threads import available_cpus
from tests.serve.conftest import ADMIN, free_port, wait_healthy

AUTH = {"Authorization": f"Bearer {ADMIN}"}

SYNC_S = 0.2


def _start(
    artifact: Path, store: str, prefix: str, workers: int
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "funnelrec", "serve", "--artifacts", str(artifact)]
    cmd += ["--store", store, "--port", str(port), "--workers", str(workers)]
    env = {
        **os.environ,
        "FUNNELREC_LOG_LEVEL": "warning",
        "FUNNELREC_REDIS_PREFIX": prefix,
        "FUNNELREC_SYNC_INTERVAL_S": str(SYNC_S),
        "FUNNELREC_ADMIN_TOKEN": ADMIN,
    }
    for var in ("FUNNELREC_THREADS", "OMP_NUM_THREADS"):  # the default: CPUs split among workers
        env.pop(var, None)
    # own process group: stopping it stops uvicorn's worker processes too
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    return f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def servers(artifact: Path, redis_url: str) -> Iterator[dict[str, str]]:
    prefix = f"test-multiworker-{time.time_ns()}"
    open_store(redis_url, prefix=prefix).close()  # reachable
    with ExitStack() as stack:
        urls = {}
        for name, workers in (("a", 2), ("b", 1)):
            url, proc = _start(artifact, redis_url, prefix, workers)
            stack.callback(_stop, proc)
            urls[name] = url
        for url in urls.values():
            wait_healthy(url, timeout=120)
        yield urls


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _get(url: str, path: str, **params: Any) -> Any:
    # a fresh connection per call: the balancer deals it to the next of a's workers
    with httpx.Client(base_url=url, timeout=10.0, verify=False) as c:
        r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def _slate(url: str, user: str) -> list[str]:
    return [i["item_id"] for i in _get(url, "/recommend", user_id=user, k=10)["items"]]


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(SYNC_S / 2)


def test_workers_split_the_cores_between_them(servers: dict[str, str]) -> None:
    cpus = available_cpus()  # each worker's share, less one for its event loop
    assert _get(servers["b"], "/health")["threads"] == max(1, cpus - 1)
    per_worker = {h["pid"]: h["threads"] for h in (_get(servers["a"], "/health") for _ in range(8))}
    assert set(per_worker.values()) == {max(1, cpus // 2 - 1)}


def test_event_through_one_process_changes_the_next_answer_of_another(
    servers: dict[str, str],
) -> None:
    user = "u0007"
    before = _slate(servers["b"], user)
    assert len(before) == 10
    assert _slate(servers["a"], user) == before  # any process answers any user alike
    seen = before[:3]
    events = [{"user_id": user, "item_id": i, "type": "click"} for i in seen]
    with httpx.Client(base_url=servers["a"], timeout=10.0) as c:
        assert c.post("/events", json={"events": events}).status_code == 200
    after = _slate(servers["b"], user)  # the very next request, at the other process
    assert after != before and not set(seen) & set(after)
    assert [_slate(servers["a"], user) for _ in range(4)] == [after] * 4


def test_item_upserted_through_one_process_is_known_to_the_others(
    servers: dict[str, str],
) -> None:
    item = {"item_id": "i9999-new", "category": "music", "tags": ["live"]}
    with httpx.Client(base_url=servers["b"], timeout=10.0) as c:
        assert c.put("/items", json={"items": [item]}, headers=AUTH).status_code == 200
    event = {"user_id": "u0011", "item_id": "i9999-new", "type": "click"}

    def accepted_by_a() -> bool:  # both of a's workers must have applied the upsert
        with httpx.Client(base_url=servers["a"], timeout=10.0) as c:
            return c.post("/events", json={"events": [event]}).status_code == 200

    _eventually(lambda: all(accepted_by_a() for _ in range(6)))
    n_items = {_get(servers["a"], "/health")["n_items"] for _ in range(6)}
    assert n_items == {_get(servers["b"], "/health")["n_items"]}


def test_reload_through_one_process_reaches_every_process(
    servers: dict[str, str], popular_artifact: Path
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=servers["b"], timeout=60.0) as c:
        r = c.post("/admin/reload", json={"artifacts": str(popular_artifact)}, headers=headers)
        assert r.status_code == 200, r.text

    def everyone_reloaded() -> bool:
        # a fresh connection may reach either of a's workers, unevenly (and a busy worker
        # may be restarted under a new pid): every one of many polls must see the reload
        polled = [_get(servers[s], "/health")["artifacts"] for s in ("a",) * 8 + ("b",) * 2]
        return set(polled) == {popular_artifact.name}  # /health names the directory only

    def popular_answers() -> bool:  # the popular-only funnel answers, wherever asked
        traces = [
            _get(servers[s], "/recommend", user_id="u0007", k=5, explain="true")
            for s in ("a",) * 8 + ("b",) * 2
        ]
        return all(list(t["trace"]["channels"]) == ["popular"] for t in traces)

    _eventually(everyone_reloaded, timeout=90.0)
    _eventually(popular_answers, timeout=90.0)


def _health_pid(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/health")
    response = conn.getresponse()
    assert response.status == 200
    return int(json.loads(response.read())["pid"])


def test_connections_are_dealt_to_the_workers_in_turn(servers: dict[str, str]) -> None:
    """A pool of keep-alive connections opened together (a load generator's, a gateway's) is
    split evenly between the two workers and each stays with its worker; fresh connections
    one after another alternate. (With the kernel's shared listening socket, one worker took
    whatever was pending: 50 connections split anywhere from 22/28 to 38/12.)"""
    url = urlsplit(servers["a"])
    pool = [http.client.HTTPConnection(url.hostname, url.port, timeout=10) for _ in range(6)]
    try:
        for conn in pool:  # every connection open before any request
            conn.connect()
        pids = [_health_pid(conn) for conn in pool]
        assert sorted(Counter(pids).values()) == [3, 3]
        assert [_health_pid(conn) for conn in pool] == pids  # keep-alive: same worker
    finally:
        for conn in pool:
            conn.close()
    fresh = [_get(servers["a"], "/health")["pid"] for _ in range(6)]
    assert len(set(fresh)) == 2
    assert all(a != b for a, b in itertools.pairwise(fresh))


def test_a_worker_that_dies_is_replaced_while_the_other_serves(servers: dict[str, str]) -> None:
    """SIGKILL one worker: every request still gets an answer (the balancer skips the dead
    worker), and a new worker takes its place. Runs last: it changes a's pids."""
    before = {_get(servers["a"], "/health")["pid"] for _ in range(4)}
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _eventually(lambda: _gone(victim))  # (connections dealt to it while dying die with it)
    for _ in range(6):  # answered meanwhile, by the survivor or the replacement
        assert _slate(servers["a"], "u0007")

    def replaced() -> bool:
        pids = {_get(servers["a"], "/health")["pid"] for _ in range(4)}
        return len(pids) == 2 and victim not in pids

    _eventually(replaced, timeout=90.0)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited and been reaped by the balancer (a zombie leader may still
    have threads tearing down, its sockets open)."""
    return not Path(f"/proc/{pid}").exists()


def test_worker_entry_point_rejects_bad_arguments() -> None:
    cmd = [sys.executable, "-m", "funnelrec.serve.workers", "--port", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "usage: python -m funnelrec.serve.workers --channel FD"
    )


@pytest.mark.parametrize(
    ("balance", "supported", "expected"),
    [
        ("round_robin", True, "balancer"),
        ("kernel", True, "uvicorn"),
        ("round_robin", False, "uvicorn"),
    ],
)
def test_balance_setting_picks_how_workers_share_connections(
    balance: str, supported: bool, expected: str, monkeypatch: pytest.MonkeyPatch, artifact: Path
) -> None:
    """``--balance round_robin`` (default) runs the balancer; ``kernel``, or a platform that
    cannot pass sockets, runs uvicorn's workers on a shared listening socket."""
    import uvicorn

    from funnelrec.cli import serve as serve_cli
    from funnelrec.serve import balancer

    ran: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: ran.append("uvicorn"))
    monkeypatch.setattr(balancer, "serve_balanced", lambda *a, **k: ran.append("balancer"))
    monkeypatch.setattr(balancer, "supported", lambda: supported)
    for var in ("FUNNELREC_THREADS", "FUNNELREC_BALANCE", "FUNNELREC_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the CLI writes its flags there
    serve_cli._serve_workers(None, 2, artifacts=artifact, balance=balance)
    assert ran == [expected]


def test_workers_that_cannot_start_end_in_one_line_errors(tmp_path: Path) -> None:
    """A bad artifact under ``--workers 2``: each worker's reason and the balancer's
    conclusion are one line each, exit code 2, no traceback."""
    cmd = [sys.executable, "-m", "funnelrec", "serve", "--artifacts", str(tmp_path)]
    cmd += ["--store", f"sqlite:///{tmp_path / 'store.db'}", "--port", str(free_port())]
    done = subprocess.run([*cmd, "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert f"error: {tmp_path} is not a funnel artifact (no meta.json)" in lines
    assert lines[-1].startswith("error: a serve worker exited during start-up (exit code 1")


def test_serving_benchmark_reads_the_metrics_of_every_worker(
    servers: dict[str, str], serve_benchmark: Any
) -> None:
    """Each worker keeps its own Prometheus registry: ``benchmarks/serve.py`` scrapes every
    process (a fresh connection reaches the next worker) and sums them, so stage times and
    batch sizes count every request (one ``/metrics`` call saw one worker's share, or two
    different workers' counters before and after a run)."""
    bench = serve_benchmark

    def requests_in_batches(texts: list[str]) -> float:
        name = "funnelrec_recommend_batch_size_sum"
        return sum(s.value for s in bench._samples(texts) if s.name == name)

    url = servers["a"]
    before = bench.scrape(url, 2)
    for i in range(6):  # fresh connections: three to each worker
        _slate(url, f"u{i}")
    after = bench.scrape(url, 2)
    assert len(before) == len(after) == 2
    assert requests_in_batches(after) - requests_in_batches(before) == 6
    assert bench.stage_ms_per_request(before, after, 6)["funnel"] > 0
