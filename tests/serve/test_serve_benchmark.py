"""``benchmarks/serve.py --floor``: the bare uvicorn app it measures as the HTTP floor."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from tests.serve.conftest import free_port


def test_http_floor_answers_every_request_with_the_given_body(
    serve_benchmark: Any, tmp_path: Path
) -> None:
    """The floor server returns the recorded ``/recommend`` body byte for byte on any path,
    and ``measure_floor`` loads it with the benchmark's own load generator (httpx here, no
    errors) and counts its CPU per request."""
    body = b'{"user_id":"7","items":[{"item_id":3,"score":0.5}]}'
    (tmp_path / "floor.json").write_bytes(body)
    port = free_port()
    proc = serve_benchmark.start_floor(tmp_path / "floor.json", port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/recommend", params={"user_id": "x"})
        assert answer.status_code == 200
        assert answer.content == body
        assert answer.headers["content-type"] == "application/json"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    args = argparse.Namespace(port=free_port(), clients=4, duration=1.0, loadgen="httpx")
    result = serve_benchmark.measure_floor(["1", "2", "3"], args, tmp_path, body)
    assert result["loadgen"] == "httpx"
    assert result["errors"] == 0
    assert result["requests"] > 0
    assert result["cpu_ms"] > 0
    assert result["p99_ms"] >= result["p50_ms"] > 0
