"""The loop through the HTTP API: impression log, request-linked events, online counters,
rollout arms and interleaving, per-arm metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from funnelrec.cli import app
from funnelrec.data.dataset import Dataset
from funnelrec.serve.rollout import arm_of
from tests.serve.conftest import ADMIN, Live

Serve = Callable[..., Live]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def recommend(c: httpx.Client, user: str, **params: Any) -> dict[str, Any]:
    r = c.get("/recommend", params={"user_id": user, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_every_response_is_logged_and_events_name_it(serve: Serve) -> None:
    live = serve(impression_flush_ms=20)
    store = live.state.store
    with live.client() as c:
        body = recommend(c, "u0005", k=6)
        items = [i["item_id"] for i in body["items"]]
        click = {"user_id": "u0005", "item_id": items[2], "request_id": body["request_id"]}
        assert c.post("/events", json={"events": [click]}).status_code == 200
        bad = {**click, "request_id": "x" * 65}
        assert c.post("/events", json={"events": [bad]}).status_code == 422
    wait_for(lambda: len(store.impressions()) == 6)
    rows = store.impressions()
    assert {r.request_id for r in rows} == {body["request_id"]}
    assert [r.position for r in rows] == list(range(6))
    assert [r.item_id for r in rows] == items
    assert {(r.user_id, r.generation, r.arm) for r in rows} == {("u0005", 1, "control")}
    [link] = store.feedback()
    assert (link.request_id, link.event.item_id) == (body["request_id"], items[2])
    text = httpx.get(f"{live.url}/metrics").text
    assert 'funnelrec_arm_total{arm="control",kind="clicks"} 1.0' in text
    assert 'funnelrec_arm_total{arm="control",kind="impressions"} 6.0' in text


def test_a_new_trend_reaches_popular_and_itemcf_without_refit(
    serve: Serve, tiny_world: Dataset
) -> None:
    live = serve(online_apply_s=0.05)
    funnel = live.state.current.funnel
    if not {"popular", "itemcf"} <= set(funnel.channels):
        pytest.skip("needs the popular and itemcf channels")
    offsets, hist, _ = tiny_world.sequences
    anchor = "i0007"  # a catalogue item; users who had it are "related" to the new trend
    a_idx = tiny_world.item_ids.index(anchor)
    related = next(
        tiny_world.user_ids.external([u])[0]
        for u in range(tiny_world.n_users)
        if a_idx in hist[offsets[u] : offsets[u + 1]][-3:]
    )
    new = {"item_id": "viral-1", "category": "news", "tags": ["x"], "title": "Viral"}
    with live.client() as c:
        auth = {"Authorization": f"Bearer {ADMIN}"}  # item upserts need the admin token
        assert c.put("/items", json={"items": [new]}, headers=auth).status_code == 200
        before = recommend(c, str(related), explain="true")["trace"]["channels"]
        for channel in ("popular", "itemcf"):  # (the fresh channel knows new items at once)
            assert "viral-1" not in [i["item"] for i in before[channel]]
        for lo in range(0, 1000, 500):  # 1,000 fans: the anchor, then the new item
            events = []
            for n in range(lo, lo + 500):
                events += [
                    {"user_id": f"fan{n}", "item_id": anchor, "timestamp": time.time() - 1},
                    {"user_id": f"fan{n}", "item_id": "viral-1"},
                ]
            assert c.post("/events", json={"events": events}).status_code == 200
        counters = live.state.loop.counters
        wait_for(lambda: counters.applied == 2000 and counters.pending == 0)
        after = recommend(c, str(related), explain="true")["trace"]["channels"]
    assert after["popular"][0]["item"] == "viral-1"
    assert "viral-1" in [i["item"] for i in after["itemcf"]]
    assert "funnelrec_online_events_total 2000.0" in httpx.get(f"{live.url}/metrics").text


def test_rollout_split_is_stable_per_user_and_across_processes(
    serve: Serve, popular_artifact: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    first = serve(store=store, candidate=popular_artifact, share=0.5)
    second = serve(store=store, candidate=popular_artifact, share=0.5)  # another "worker"
    users = [f"u{n:04d}" for n in range(30)]
    arms: dict[str, set[str]] = {u: set() for u in users}
    with first.client() as a, second.client() as b:
        for _ in range(2):
            for u in users:
                arms[u].add(recommend(a, u)["arm"])
                arms[u].add(recommend(b, u)["arm"])
    assert all(len(v) == 1 for v in arms.values())
    assert {next(iter(v)) for v in arms.values()} == {"control", "candidate"}
    assert all(next(iter(arms[u])) == arm_of(u, 0.5) for u in users)
    share = sum(arm_of(f"user-{n}", 0.1) == "candidate" for n in range(5000)) / 5000
    assert 0.08 < share < 0.12


def test_interleaving_credits_teams_and_report_shows_intervals(
    serve: Serve, popular_artifact: Path, tmp_path: Path
) -> None:
    store_path = tmp_path / "inter.db"
    live = serve(
        store=f"sqlite:///{store_path}",
        candidate=popular_artifact,
        share=1.0,
        interleave=True,
        impression_flush_ms=20,
    )
    with live.client() as c:
        for n in range(20):
            body = recommend(c, f"u{n:04d}", k=8)
            assert body["arm"] == "interleave" and len(body["items"]) == 8
            assert {i["channels"][0] for i in body["items"]} <= {"control", "candidate"}
            top = body["items"][0]
            event = {"user_id": f"u{n:04d}", "item_id": top["item_id"]}
            c.post("/events", json={"events": [{**event, "request_id": body["request_id"]}]})
    wait_for(lambda: len(live.state.store.impressions()) == 160)
    wins = live.state.loop.outcomes.wins()
    assert sum(wins.values()) == 20 and wins["tie"] == 0
    text = httpx.get(f"{live.url}/metrics").text
    assert "funnelrec_interleave_wins_total" in text
    result = CliRunner().invoke(app, ["report", "--store", f"sqlite:///{store_path}", "--json"])
    assert result.exit_code == 0, result.output
    import json

    arms = {a["arm"]: a for a in json.loads(result.output)["arms"]}
    assert set(arms) == {"control", "candidate"}
    assert sum(a["impressions"] for a in arms.values()) == 160
    assert sum(a["clicks"] for a in arms.values()) == 20
    for a in arms.values():
        low, mean, high = a["ctr"][1], a["ctr"][0], a["ctr"][2]
        assert 0 <= low <= mean <= high <= 1


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_stores_keep_impressions_and_request_links(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from funnelrec.serve.store.base import Event, Feedback, Impression, open_store

    if kind == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        url = request.getfixturevalue("redis_url")
        store = open_store(url, prefix=request.getfixturevalue("redis_prefix"))
    rows = [
        Impression("r1", "u1", f"i{p}", p, 1.0 / (p + 1), 3, "candidate", 5.0) for p in range(3)
    ]
    try:
        assert store.append_impressions(rows) == 3 and store.append_impressions([]) == 0
        link = Feedback("r1", Event("u1", "i1", "click", 6.0))
        store.append_feedback([link])
        assert store.impressions() == rows and store.feedback() == [link]
    finally:
        store.close()
