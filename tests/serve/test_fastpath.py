"""``serve/fastpath.py``: canonical ``GET /recommend`` requests are answered before FastAPI's
routing, every other one by the route, and the answers are the same either way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from funnelrec.serve.fastpath import Params, parse_canonical
from funnelrec.serve.routes import recommend
from tests.serve.conftest import Live

Serve = Callable[..., Live]
TOKEN = "public-token-0123456789"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"user_id=u1", Params("u1", None, False, None, [])),
        (b"k=7&user_id=u1&explain=true", Params("u1", 7, True, None, [])),
        (b"user_id=u1&explain=0&now=1700000000.25", Params("u1", None, False, 1700000000.25, [])),
        (
            b"user_id=%C3%A9t%C3%A9&exclude=i1&exclude=i2",
            Params("été", None, False, None, ["i1", "i2"]),
        ),
        (
            b"user_id=u1&utm_source=mail",
            Params("u1", None, False, None, []),
        ),  # ignored, as by the route
        (b"user_id=u1&k=50", Params("u1", 50, False, None, [])),
    ],
)
def test_canonical_queries_are_parsed(query: bytes, expected: Params) -> None:
    assert parse_canonical(query, max_k=50) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"k=5",  # no user
        b"user_id=",  # empty user
        b"user_id=" + b"x" * 257,
        b"user_id=a&user_id=b",  # repeated scalar
        b"user_id=u&k=0",
        b"user_id=u&k=05",
        b"user_id=u&k=%2B5",  # +5
        b"user_id=u&k=51",  # over max_k
        b"user_id=u&k=ten",
        b"user_id=u&k=5&k=6",
        b"user_id=u&explain=yes",  # the route accepts it: it decides
        b"user_id=u&now=-1",
        b"user_id=u&now=1e3",
        b"user_id=u&now=100000000001",  # past MAX_TIME
        b"user_id=u" + b"&exclude=i" * 1001,
    ],
)
def test_other_queries_go_to_the_route(query: bytes) -> None:
    assert parse_canonical(query, max_k=50) is None


QUERIES = [
    "user_id=u0001&k=5",
    "user_id=u0001",
    "user_id=stranger&k=3",
    "user_id=u0002&k=4&explain=true",
    "user_id=u0003&k=10&exclude=i0001&exclude=i0002",
    f"user_id={quote('été')}&k=2",
    "user_id=u0004&k=6&now=1000.5",
    # non-canonical: answered by the route on both servers
    "user_id=u0005&k=%2B4",
    "user_id=u0005&explain=yes&k=3",
    "user_id=u0005&now=1e3&k=3",
    "user_id=u0005&k=0",
    "user_id=u0005&k=500",
    "user_id=&k=3",
    "k=3",
    "user_id=u0005" + "&exclude=i" * 1001,
]


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The body without what differs between two servers (request id, stage timings)."""
    return {k: v for k, v in body.items() if k not in ("request_id", "timings_ms")}


def test_both_paths_give_the_same_answers(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    through_route: list[int] = []
    real = recommend.json_response

    def counting(body: Any, status_code: int = 200) -> Any:
        through_route.append(1)
        return real(body, status_code)

    monkeypatch.setattr(recommend, "json_response", counting)
    answers = {}
    for fast in (True, False):
        live = serve(
            recommend_fast_path=fast, clock="data", store=f"sqlite:///{tmp_path / f'{fast}.db'}"
        )
        through_route.clear()
        with live.client() as c:
            responses = [c.get(f"/recommend?{q}") for q in QUERIES]
        answers[fast] = [(r.status_code, comparable(r.json())) for r in responses]
        ok = sum(r.status_code == 200 for r in responses)
        # fast path: only the three accepted non-canonical queries reach the route
        assert len(through_route) == (3 if fast else ok)
    assert [a[0] for a in answers[True]][:10] == [200] * 10
    assert answers[True] == answers[False]


def test_token_and_bodies_go_to_the_route(serve: Serve) -> None:
    live = serve(api_token=TOKEN)
    with live.client() as c:
        assert c.get("/recommend?user_id=u1").status_code == 401
        wrong = c.get("/recommend?user_id=u1", headers={"Authorization": "Bearer wrong-token"})
        assert wrong.status_code == 403
        good = c.get("/recommend?user_id=u1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.json()["user_id"] == "u1"
        lower = c.get("/recommend?user_id=u1", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status_code == 200  # the route's HTTPBearer accepts any case
        text = c.get("/metrics").text
    assert 'route="/recommend",status="200"} 2.0' in text


def test_store_failure_is_a_503(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    from funnelrec.serve.store.base import StoreError

    live = serve()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("disk full")

    monkeypatch.setattr(live.state.store, "user_states", down)
    with live.client() as c:
        r = c.get("/recommend?user_id=u0001&k=3")
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "store unavailable"
