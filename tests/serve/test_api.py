"""The HTTP API on a real uvicorn server: recommend, events, items, similar, health, metrics,
bad input."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.recall.base import RecallChannel
from tests.serve.conftest import ADMIN, Live

AUTH = {"Authorization": f"Bearer {ADMIN}"}
Serve = Callable[..., Live]


def slate(live: Live, user: str, client: httpx.Client | None = None, **params: Any) -> list[str]:
    with ExitStack() as stack:
        c = client or stack.enter_context(live.client())
        r = c.get("/recommend", params={"user_id": user, **params})
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def trained_items(world: Dataset, user: str) -> set[str]:
    offsets, items, _ = world.sequences
    u = world.user_ids.index(user)
    return set(world.item_ids.external(items[offsets[u] : offsets[u + 1]]))


def test_recommend_known_and_unknown_users(serve: Serve, tiny_world: Dataset) -> None:
    live = serve()
    with live.client() as c:
        known = c.get("/recommend", params={"user_id": "u0001", "k": 7}).json()
        cold = c.get("/recommend", params={"user_id": "stranger"}).json()
    assert known["known_user"] and len(known["items"]) == 7
    items = {i["item_id"] for i in known["items"]}
    assert not items & trained_items(tiny_world, "u0001")  # seen filter
    assert all(i["channels"] for i in known["items"])
    assert not cold["known_user"] and len(cold["items"]) == 10  # cold start, not an error
    assert known["trace"] is None and known["generation"] == 1


def test_explain_returns_the_full_trace(serve: Serve) -> None:
    live = serve()
    with live.client() as c:
        body = c.get("/recommend", params={"user_id": "u0002", "explain": "true"}).json()
    trace = body["trace"]
    assert set(trace) >= {"channels", "merged", "prerank", "rank", "rerank", "slate"}
    assert trace["channels"] and trace["merged"][0]["found_by"]
    assert [s["item"] for s in trace["slate"]] == [i["item_id"] for i in body["items"]]
    assert {"funnel", "merge", "prerank", "rank"} <= set(body["timings_ms"])
    assert any(stage.startswith("recall:") for stage in body["timings_ms"])


def test_events_change_the_next_recommendation(serve: Serve) -> None:
    live = serve()
    before = slate(live, "u0003")
    with live.client() as c:
        r = c.post("/events", json={"events": [{"user_id": "u0003", "item_id": before[0]}]})
    assert r.status_code == 200 and r.json() == {"accepted": 1, "users": 1}
    after = slate(live, "u0003")
    assert before[0] not in after  # the item just consumed is filtered at once


def test_events_personalise_a_cold_user(serve: Serve) -> None:
    live = serve()
    cold = slate(live, "newcomer")
    clicks = [{"user_id": "newcomer", "item_id": f"i{n:04d}"} for n in (3, 17, 42)]
    with live.client() as c:
        assert c.post("/events", json={"events": clicks}).status_code == 200
    warm = slate(live, "newcomer")
    assert not {"i0003", "i0017", "i0042"} & set(warm)
    if "itemcf" in live.state.current.funnel.channels:  # history-based recall reacts
        assert warm != [i for i in cold if i not in {"i0003", "i0017", "i0042"}]


def test_unknown_items_reject_the_whole_batch(serve: Serve) -> None:
    live = serve()
    events = [
        {"user_id": "u0004", "item_id": "i0001"},
        {"user_id": "u0004", "item_id": "ghost-1"},
        {"user_id": "u0004", "item_id": "ghost-2"},
    ]
    with live.client() as c:
        r = c.post("/events", json={"events": events})
    assert r.status_code == 422
    assert r.json()["detail"]["unknown_item_ids"] == ["ghost-1", "ghost-2"]
    assert live.state.store.count_events() == 0


def ev(**fields: Any) -> dict[str, Any]:
    return {"json": {"events": [{"user_id": "u", "item_id": "i0001", **fields}]}}


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        (ev(timestamp=4e9), "body.events.0.timestamp"),
        (ev(item_id=1.5), "body.events.0.item_id"),
        (ev(extra=1), "body.events.0.extra"),
        (ev(type="no spaces"), "body.events.0.type"),
        ({"json": {"events": []}}, "body.events"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "body"),
    ],
)
def test_bad_events_get_422_naming_the_field(
    serve: Serve, request_kwargs: dict[str, Any], field: str
) -> None:
    live = serve()
    with live.client() as c:
        r = c.post("/events", **request_kwargs)
    assert r.status_code == 422, r.text
    assert field in r.json()["message"]
    assert live.state.store.count_events() == 0


def test_bad_recommend_parameters(serve: Serve) -> None:
    live = serve(max_k=50)
    with live.client() as c:
        assert (
            "query.k" in c.get("/recommend", params={"user_id": "u", "k": "ten"}).json()["message"]
        )
        assert c.get("/recommend", params={"user_id": "u", "k": 51}).status_code == 422
        assert "query.user_id" in c.get("/recommend").json()["message"]


def test_limits_give_413(serve: Serve) -> None:
    live = serve(max_events=3, max_body_bytes=2048)
    events = [{"user_id": "u", "item_id": "i0001"}] * 4
    with live.client() as c:
        r = c.post("/events", json={"events": events})
        assert r.status_code == 413 and "limit is 3" in r.json()["message"]
        big = c.post("/events", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert big.status_code == 413
    assert live.state.store.count_events() == 0


def test_new_item_is_known_everywhere(serve: Serve, tiny_world: Dataset) -> None:
    live = serve()
    item = {"item_id": "brand-new", "category": "Kitchen", "tags": ["baking"], "title": "Pan"}
    with live.client() as c:
        r = c.put("/items", json={"items": [item]}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json() == {"created": ["brand-new"], "updated": [], "n_items": 201}
        assert c.get("/similar", params={"item_id": "brand-new"}).status_code == 200
        ok = c.post("/events", json={"events": [{"user_id": "u0005", "item_id": "brand-new"}]})
        assert ok.status_code == 200
        assert c.put(
            "/items", json={"items": [{"item_id": "i0001", "title": "Renamed"}]}, headers=AUTH
        ).json()["updated"] == ["i0001"]
    dataset = live.state.current.dataset
    assert dataset.item_ids.index("brand-new") == tiny_world.n_items
    assert dataset.items.row(200, named=True)["category"] == "Kitchen"
    assert dataset.items.row(1, named=True)["title"] == "Renamed"
    assert live.state.store.items()[0]["item_id"] == "brand-new"


def test_new_item_is_recommendable(serve: Serve) -> None:
    live = serve(clock="data")
    channels = live.state.current.funnel.channels.values()
    serving = [c for c in channels if type(c).upsert_items is not RecallChannel.upsert_items]
    assert serving, "no recall channel of the test funnel can serve a new item"
    created = live.state.current.dataset.max_timestamp
    item = {"item_id": "hot-new", "category": "Kitchen", "tags": ["baking"], "created_at": created}
    with live.client() as c:
        assert c.put("/items", json={"items": [item]}, headers=AUTH).status_code == 200
    assert "hot-new" in slate(live, "stranger", k=50)


def test_bad_items_are_rejected_before_writing(serve: Serve) -> None:
    live = serve()
    with live.client() as c:
        r = c.put(
            "/items",
            json={"items": [{"item_id": "x", "attributes": {"category": "A"}}]},
            headers=AUTH,
        )
        assert r.status_code == 422 and "attributes.category" in r.json()["message"]
        r = c.put(
            "/items", json={"items": [{"item_id": "x", "created_at": "yesterday"}]}, headers=AUTH
        )
        assert r.status_code == 422 and "created_at" in r.json()["message"]
    assert live.state.store.items() == []


def test_similar(serve: Serve, popular_artifact: Any) -> None:
    live = serve()
    with live.client() as c:
        r = c.get("/similar", params={"item_id": "i0003", "k": 5})
        missing = c.get("/similar", params={"item_id": "nope"})
    assert r.status_code == 200
    body = r.json()
    assert 0 < len(body["items"]) <= 5 and "i0003" not in [i["item_id"] for i in body["items"]]
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    plain = serve(artifacts=popular_artifact)  # no item-CF channel: co-occurrence
    with plain.client() as c:
        body = c.get("/similar", params={"item_id": "i0003", "k": 5}).json()
    assert body["source"] == "cooccurrence" and len(body["items"]) == 5


def test_health_and_metrics(serve: Serve) -> None:
    live = serve()
    slate(live, "u0006", explain="true")
    with live.client() as c:
        health = c.get("/health").json()
        c.get("/nowhere")
        text = c.get("/metrics").text
    assert health["status"] == "ok" and health["store"] == "sqlite" and health["n_items"] == 200
    assert 'funnelrec_http_requests_total{method="GET",route="/recommend",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'funnelrec_stage_seconds_bucket{le="0.005",stage="rank"}' in text
    assert "funnelrec_recommend_batch_size_count 1.0" in text


def test_public_token_when_configured(serve: Serve) -> None:
    token = "public-token-0123456789"
    live = serve(api_token=token)
    with live.client() as c:
        assert c.get("/recommend", params={"user_id": "u"}).status_code == 401
        good = c.get(
            "/recommend", params={"user_id": "u"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert good.status_code == 200
        assert c.get("/health").status_code == 200  # probes never need a token


def test_concurrent_requests_are_batched(serve: Serve) -> None:
    import concurrent.futures as cf

    live = serve(batch_wait_ms=5)
    users = [f"u{n:04d}" for n in range(40)]
    with live.client() as c:
        singles = {u: slate(live, u, k=5, client=c) for u in users}
    with cf.ThreadPoolExecutor(16) as pool:
        batched = dict(zip(users, pool.map(lambda u: slate(live, u, k=5), users), strict=True))
    assert batched == singles  # same answers whatever the batch
    with live.client() as c:
        text = c.get("/metrics").text
    count = float(text.split("funnelrec_recommend_batch_size_count ")[1].split()[0])
    assert count < 80  # fewer funnel runs than requests


def test_far_future_limit_uses_server_time(serve: Serve) -> None:
    live = serve(max_future_s=60)
    soon = time.time() + 30
    with live.client() as c:
        r = c.post(
            "/events", json={"events": [{"user_id": "u", "item_id": "i0001", "timestamp": soon}]}
        )
    assert r.status_code == 200
