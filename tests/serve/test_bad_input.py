"""The HTTP rows of the README's bad-input table (status and message of each), the catalogue
token, ``/health`` without paths, the slate cap note and ``/similar`` for a new item."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import ADMIN, Live

AUTH = {"Authorization": f"Bearer {ADMIN}"}
Serve = Callable[..., Live]
EVENT = {"user_id": "u0001", "item_id": "i0001"}


def answer(live: Live, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with live.client() as c:
        r = c.request(method, path, **kwargs)
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timestamp", False, "body.events.0.timestamp: Input should be a valid number"),
        ("timestamp", "1700000000", "body.events.0.timestamp: Input should be a valid number"),
        ("timestamp", 1e12, "body.events.0.timestamp: Input should be less than or equal to"),
        ("item_id", 2**53, "body.events.0.item_id.int: Input should be less than or equal to 9007"),
    ],
)
def test_event_fields_are_strict(serve: Serve, field: str, value: Any, message: str) -> None:
    live = serve()
    status, body = answer(live, "POST", "/events", json={"events": [{**EVENT, field: value}]})
    assert status == 422 and message in body["message"], body
    assert live.state.store.count_events() == 0


def test_unknown_items_are_rejected_with_their_ids(serve: Serve) -> None:
    live = serve()
    status, body = answer(
        live, "POST", "/events", json={"events": [{"user_id": "u1", "item_id": "nope"}]}
    )
    assert status == 422 and body["error"] == "unknown items"
    assert body["message"] == "1 unknown item id(s); nothing stored: upsert them with PUT /items"
    assert body["detail"] == {"unknown_item_ids": ["nope"]}


def test_catalogue_writes_need_a_token(serve: Serve) -> None:
    item = {"items": [{"item_id": "i0001", "title": "Hijacked"}]}
    live = serve()
    assert answer(live, "PUT", "/items", json=item)[0] == 401
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    assert answer(live, "PUT", "/items", json=item, headers=wrong)[0] == 403
    assert answer(live, "PUT", "/items", json=item, headers=AUTH)[0] == 200
    own = serve(catalogue_token="catalogue-token-0123", store="sqlite:///:memory:")
    cat = {"Authorization": "Bearer catalogue-token-0123"}
    assert answer(own, "PUT", "/items", json=item, headers=cat)[0] == 200
    closed = serve(admin_token=None, store="sqlite:///:memory:")
    status, body = answer(closed, "PUT", "/items", json=item)
    assert (status, body["message"]) == (403, "route disabled: no catalogue token configured")
    assert closed.state.current.dataset.items.row(1, named=True)["title"] != "Hijacked"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"created_at": False}, "body.items.0.created_at: Input should be a valid number"),
        ({"attributes": {"bad key": 1}}, "body.items.0.attributes.bad key.[key]: String should"),
        ({"attributes": {"title": "x"}}, "body.items.0.attributes.title: attribute 'title' is"),
        ({"attributes": {"rating": "x"}}, "body.items.rating: attribute 'rating' has values of"),
    ],
)
def test_bad_items_are_rejected(serve: Serve, item: dict[str, Any], message: str) -> None:
    live = serve()
    first = {"item_id": "i0002", "attributes": {"rating": 1}}  # the batch's types must agree
    body = {"items": [{"item_id": "i0001", **item}, first]}
    status, answer_ = answer(live, "PUT", "/items", json=body, headers=AUTH)
    assert status == 422 and answer_["message"].startswith(message), answer_


def test_schema_states_the_attribute_rules(serve: Serve) -> None:
    live = serve()
    with live.client() as c:
        schema = c.get("/openapi.json").json()
    attributes = schema["components"]["schemas"]["ItemIn"]["properties"]["attributes"]
    assert attributes["additionalProperties"] is False
    assert "title" in attributes["propertyNames"]["not"]["enum"]
    timestamp = schema["components"]["schemas"]["EventIn"]["properties"]["timestamp"]
    assert timestamp["anyOf"][0]["maximum"] == 1e11
    events_422 = schema["paths"]["/events"]["post"]["responses"]["422"]["description"]
    assert "unknown_item_ids" in events_422
    reload_422 = schema["paths"]["/admin/reload"]["post"]["responses"]["422"]["description"]
    assert "still serving the old model" in reload_422


def test_health_does_not_reveal_the_artifact_path(serve: Serve, artifact: Path) -> None:
    status, body = answer(serve(), "GET", "/health")
    assert status == 200 and body["artifacts"] == artifact.name
    assert str(artifact.parent) not in json.dumps(body)


def test_capped_slate_says_which_stage_capped_it(serve: Serve) -> None:
    live = serve()
    status, body = answer(live, "GET", "/recommend", params={"user_id": "u0001", "k": 60})
    assert status == 200 and body["k"] == 60 and len(body["items"]) <= 40
    assert body["capped_by"] == "rank.keep=40"
    full = answer(live, "GET", "/recommend", params={"user_id": "u0001", "k": 5})[1]
    assert full["capped_by"] is None


@pytest.mark.parametrize("how", ["truncated npz", "broken meta.json"])
def test_reload_of_a_corrupt_artifact_is_422_and_keeps_serving(
    serve: Serve, artifact: Path, tmp_path: Path, how: str
) -> None:
    from tests.test_bad_input import corrupt

    broken = tmp_path / "broken"
    shutil.copytree(artifact.resolve(), broken)
    target = corrupt(broken, how)
    live = serve()
    status, body = answer(
        live, "POST", "/admin/reload", json={"artifacts": str(broken)}, headers=AUTH
    )
    assert (status, body["error"]) == (422, "reload failed")
    assert body["message"].startswith("reload failed; still serving the old model: ")
    assert str(target) in body["message"]
    assert live.state.current.generation == 1
    assert answer(live, "GET", "/recommend", params={"user_id": "u0001"})[0] == 200


def test_similar_for_a_new_item_falls_back_to_its_tags(serve: Serve) -> None:
    live = serve()
    known = live.state.current.dataset.items.row(0, named=True)
    item = {"item_id": "new-one", "category": known["category"], "tags": known["tags"]}
    assert answer(live, "PUT", "/items", json={"items": [item]}, headers=AUTH)[0] == 200
    event = {"user_id": "u0003", "item_id": "new-one"}
    assert answer(live, "POST", "/events", json={"events": [event]})[0] == 200
    status, body = answer(live, "GET", "/similar", params={"item_id": "new-one", "k": 5})
    assert status == 200 and body["source"] == "content"
    assert len(body["items"]) == 5 and body["items"][0]["score"] > 0
    assert "i0000" in [i["item_id"] for i in body["items"]]  # same tags and category
    old = answer(live, "GET", "/similar", params={"item_id": "i0001", "k": 5})[1]
    assert old["source"] == "itemcf" and old["items"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"k": 0}, 422, "query.k: Input should be greater than or equal to 1"),
        ({"k": 500}, 422, "query.k: Input should be less than or equal to 200"),
    ],
)
def test_recommend_rejects_k_out_of_range(
    serve: Serve, params: dict[str, Any], status: int, message: str
) -> None:
    got = answer(serve(), "GET", "/recommend", params={"user_id": "u0001", **params})
    assert (got[0], got[1]["message"]) == (status, message)


def test_similar_of_an_unknown_item_is_404(serve: Serve) -> None:
    got = answer(serve(), "GET", "/similar", params={"item_id": "zzz"})
    assert (got[0], got[1]["message"]) == (404, "unknown item_id 'zzz'")
