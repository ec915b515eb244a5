"""One ``threads`` setting: precedence (CLI > env > config > OMP > CPUs), every pool set."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from funnelrec.config import parse_config
from funnelrec.errors import ConfigError
from funnelrec.threads import (
    ENV_VAR,
    apply_threads,
    available_cpus,
    current_threads,
    map_in_threads,
    resolve_threads,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put torch, BLAS, Faiss and the environment back as they were."""
    for var in (ENV_VAR, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("funnelrec.threads._applied", None)
    before = torch.get_num_threads()
    with threadpool_limits(limits=None):
        faiss_before = faiss.omp_get_max_threads()
        yield
    torch.set_num_threads(before)
    faiss.omp_set_num_threads(faiss_before)
    for var in (ENV_VAR, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.pop(var, None)


def test_precedence(restore_pools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_threads() == available_cpus()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads() == 3
    assert resolve_threads(configured=2) == 2
    monkeypatch.setenv(ENV_VAR, "5")
    assert resolve_threads(configured=2) == 5
    assert resolve_threads(explicit=1, configured=2) == 1


@pytest.mark.parametrize("raw", ["two", "0", "-1"])
def test_bad_env_names_the_value(
    restore_pools: None, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(ENV_VAR, raw)
    with pytest.raises(ConfigError, match=ENV_VAR):
        resolve_threads()


def test_apply_sets_every_pool(restore_pools: None) -> None:
    target = 3 if torch.get_num_threads() != 3 else 2
    assert apply_threads(target) == target
    assert torch.get_num_threads() == target
    assert faiss.omp_get_max_threads() == target
    assert all(pool["num_threads"] == target for pool in threadpool_info())
    assert os.environ[ENV_VAR] == str(target)


def test_config_threads_validated() -> None:
    raw = {"recall": {"channels": [{"name": "popular"}]}}
    assert parse_config({**raw, "threads": 2}).threads == 2
    assert parse_config(raw).threads is None
    with pytest.raises(ConfigError, match="threads"):
        parse_config({**raw, "threads": 0})


def test_cli_bad_env_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, ENV_VAR: "lots"}
    data = "synthetic:n_users=50,n_items=40,n_interactions=500"
    args = ["fit", "-c", "configs/synthetic.toml", "-d", data, "-o", str(tmp_path / "a")]
    res = subprocess.run(
        [sys.executable, "-m", "funnelrec.cli", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 2
    assert "FUNNELREC_THREADS must be an integer, got 'lots'" in res.stderr


def test_current_threads_is_the_applied_setting(restore_pools: None) -> None:
    assert current_threads() == resolve_threads()
    assert apply_threads(3, export=False) == 3
    assert current_threads() == 3


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_map_in_threads_keeps_order_and_uses_up_to_threads(threads: int) -> None:
    """Results in input order, as the serial loop's; more than one thread runs the pieces
    off the calling thread (a pool), one thread runs them in it."""
    names: set[str] = set()

    def square(x: int) -> int:
        names.add(threading.current_thread().name)
        return x * x

    assert map_in_threads(square, range(7), threads) == [x * x for x in range(7)]
    main = threading.current_thread().name
    assert (names == {main}) == (threads == 1)
    assert len(names) <= threads
