"""Serving fixtures: a tiny funnel artifact, real uvicorn servers on loopback (in a thread or
a subprocess), and a real ``redis-server`` (skipped when the binary is absent)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from funnelrec.config import parse_config
from funnelrec.data.dataset import Dataset
from funnelrec.pipeline import Funnel
from funnelrec.registry import RECALL
from funnelrec.serve import create_app, load_settings

ADMIN = "admin-token-0123456789"
CHANNELS = ("popular", "itemcf", "fresh", "tag")  # every one must be registered


@pytest.fixture
def serve_benchmark(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``benchmarks/serve.py`` as a module (its ``benchmarks/`` siblings importable)."""
    import importlib.util

    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    spec = importlib.util.spec_from_file_location("serve_benchmark", benchmarks / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def funnel_config(channels: tuple[str, ...] = CHANNELS) -> dict[str, Any]:
    missing = sorted(set(channels) - set(RECALL.names()))
    assert not missing, f"serving tests need recall channels {missing} (not registered)"
    return {
        "k": 10,
        "recall": {"total": 120, "channels": [{"name": n} for n in channels]},
        "prerank": {"keep": 80},
        "rank": {"keep": 40},
        "rerank": [{"name": "seen_filter"}],
    }


@pytest.fixture(scope="session")
def tiny_world() -> Dataset:
    from funnelrec.data.synthetic import generate

    return generate(n_users=300, n_items=200, n_interactions=6000)


@pytest.fixture(scope="session")
def artifact(tiny_world: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "funnel"
    Funnel(parse_config(funnel_config())).fit(tiny_world).save(path)
    return path


@pytest.fixture(scope="session")
def popular_artifact(tiny_world: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "popular"
    Funnel(parse_config(funnel_config(("popular",)))).fit(tiny_world).save(path)
    return path


@dataclass
class Live:
    """A running server: its base URL and (thread servers) its app state."""

    url: str
    state: Any = None

    def client(self, **kwargs: Any) -> httpx.Client:
        # plain-HTTP loopback: skip loading CA certificates (60 ms per client)
        return httpx.Client(base_url=self.url, timeout=10.0, verify=False, **kwargs)


@contextmanager
def thread_server(**settings: Any) -> Iterator[Live]:
    """``create_app`` served by uvicorn in a daemon thread on a free loopback port."""
    app = create_app(load_settings(**settings))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield Live(f"http://127.0.0.1:{port}", app.state.serve)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve(artifact: Path, tmp_path: Path) -> Iterator[Callable[..., Live]]:
    """Factory: ``serve(**settings)`` starts a server (SQLite store in tmp by default)."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> Live:
            settings = {
                "artifacts": artifact,
                "store": f"sqlite:///{tmp_path / 'store.db'}",
                "admin_token": ADMIN,
                **overrides,
            }
            return stack.enter_context(thread_server(**settings))

        yield start


@contextmanager
def process_server(artifact: Path, store: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``funnelrec serve`` in a subprocess (killed on exit if still running)."""
    cmd = [sys.executable, "-m", "funnelrec.cli", "serve", "--artifacts", str(artifact)]
    cmd += ["--store", store, "--port", str(port)]
    env = {**os.environ, "FUNNELREC_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


@contextmanager
def redis_server(directory: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private ``redis-server`` (append-only, fsync always) on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``FUNNELREC_TEST_REDIS_URL`` when set (e.g. by .ci/run), else a private server."""
    external = os.environ.get("FUNNELREC_TEST_REDIS_URL")
    if external:
        yield external
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of its own per test (tests never flush a shared server)."""
    return f"test-{request.node.name}-{time.time_ns()}"
