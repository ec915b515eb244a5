"""Admin routes: bearer auth, atomic hot reload under concurrent load, failed reloads."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from funnelrec.serve.settings import Settings
from funnelrec.serve.state import ServeState
from tests.serve.conftest import ADMIN, Live

Serve = Callable[..., Live]
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def test_admin_needs_the_bearer_token(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    live = serve()
    wrong = "wrong-token-0123456789"
    with caplog.at_level(logging.DEBUG), live.client() as c:
        missing = c.post("/admin/reload")
        bad = c.post("/admin/reload", headers={"Authorization": f"Bearer {wrong}"})
        basic = c.post("/admin/reload", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        good = c.post("/admin/reload", headers=AUTH)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert bad.status_code == 403 and basic.status_code == 401
    assert good.status_code == 200 and good.json()["generation"] == 2
    for text in (caplog.text, missing.text, bad.text, repr(live.state.settings)):
        assert ADMIN not in text and wrong not in text


def test_admin_is_disabled_without_a_token(serve: Serve) -> None:
    live = serve(admin_token=None)
    with live.client() as c:
        r = c.post("/admin/reload", headers=AUTH)
    assert r.status_code == 403 and "disabled" in r.json()["message"]


def test_failed_reload_keeps_serving_the_old_model(serve: Serve, tmp_path: Path) -> None:
    live = serve()
    with live.client() as c:
        r = c.post("/admin/reload", headers=AUTH, json={"artifacts": str(tmp_path / "none")})
        assert r.status_code == 422 and "still serving" in r.json()["message"]
        assert c.get("/recommend", params={"user_id": "u0001"}).json()["generation"] == 1


def test_reload_keeps_upserted_items(serve: Serve) -> None:
    live = serve()
    with live.client() as c:
        c.put("/items", json={"items": [{"item_id": "late", "category": "Garden"}]}, headers=AUTH)
        assert c.post("/admin/reload", headers=AUTH).status_code == 200
        assert c.get("/similar", params={"item_id": "late"}).status_code == 200
    served = live.state.current
    assert served.generation == 2 and served.dataset.item_ids.index("late") == 200


def _hammer(url: str, stop: threading.Event, statuses: list[int], errors: list[str]) -> None:
    rng = random.Random(threading.get_ident())
    with httpx.Client(base_url=url, timeout=10.0, verify=False) as c:
        while not stop.is_set():
            try:
                params = {"user_id": f"u{rng.randrange(300):04d}"}
                statuses.append(c.get("/recommend", params=params).status_code)
            except httpx.HTTPError as exc:  # a dropped connection is a failed request too
                errors.append(repr(exc))


def test_reload_under_concurrent_load_fails_no_request(
    serve: Serve, popular_artifact: Path
) -> None:
    live = serve()
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[str] = []
    workers = [
        threading.Thread(target=_hammer, args=(live.url, stop, statuses, errors)) for _ in range(6)
    ]
    for w in workers:
        w.start()
    try:
        with live.client(headers=AUTH) as c:
            for target in (popular_artifact, None, popular_artifact):
                time.sleep(0.4)
                body = {"artifacts": str(target)} if target else None
                assert c.post("/admin/reload", json=body).status_code == 200
            time.sleep(0.3)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert errors == [] and set(statuses) == {200}
    assert statuses  # requests ran during the reloads (how many depends on the machine)
    assert live.state.current.generation == 4
    assert set(live.state.current.funnel.channels) == {"popular"}  # the new artifact serves


def test_a_process_started_after_a_reload_serves_the_reloaded_artifact(
    artifact: Path, popular_artifact: Path, tmp_path: Path
) -> None:
    """A worker (re)started after another process published a reload joins the fleet."""
    store = f"sqlite:///{tmp_path / 'fleet.db'}"
    first = ServeState.open(Settings(artifacts=artifact, store=store))
    first.store.publish("artifacts", str(popular_artifact.absolute()))  # what a reload does
    first.store.close()
    late = ServeState.open(Settings(artifacts=artifact, store=store))
    try:
        assert late.current.artifacts.name == popular_artifact.name
        assert list(late.current.funnel.channels) == ["popular"]
    finally:
        late.store.close()


def test_a_published_artifact_that_is_gone_falls_back_to_the_configured_one(
    artifact: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'fleet.db'}"
    first = ServeState.open(Settings(artifacts=artifact, store=store))
    first.store.publish("artifacts", str(tmp_path / "removed-since"))
    first.store.close()
    late = ServeState.open(Settings(artifacts=artifact, store=store))
    try:
        assert late.current.artifacts.name == artifact.name
    finally:
        late.store.close()
