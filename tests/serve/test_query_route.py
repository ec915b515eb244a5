"""``QueryRoute``: the lean handler of ``GET /recommend`` answers exactly as FastAPI's own."""

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from funnelrec.serve.errors import ApiError, install_error_handlers
from funnelrec.serve.routes._common import QueryRoute

CALLS: list[str] = []


async def echo(
    user_id: Annotated[str, Query(min_length=1, max_length=8)],
    k: Annotated[int | None, Query(ge=1, le=50)] = None,
    explain: Annotated[bool, Query()] = False,
    now: Annotated[float | None, Query(ge=0, le=1e10)] = None,
    exclude: Annotated[list[str], Query(max_length=3)] = [],  # noqa: B006
) -> JSONResponse:
    if user_id == "boom":
        raise ApiError(404, "not found", "no such user")
    return JSONResponse(
        {"user_id": user_id, "k": k, "explain": explain, "now": now, "exclude": exclude}
    )


def _app(guarded: bool = False) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    plain = APIRouter()
    plain.add_api_route("/plain", echo, methods=["GET"])

    async def guard() -> None:
        CALLS.append("guard")
        raise ApiError(401, "unauthorized", "missing bearer token")

    deps = [Depends(guard)] if guarded else []
    lean = APIRouter(route_class=QueryRoute, dependencies=deps)
    lean.add_api_route("/lean", echo, methods=["GET"])
    app.include_router(plain)
    app.include_router(lean)
    return app


QUERIES = [
    "user_id=u1",
    "user_id=u1&k=5&explain=true&now=12.5&exclude=a&exclude=b",
    "user_id=u1&user_id=u2",  # the last value wins
    "user_id=u1&explain=yes&k=07",
    "user_id=u1&unknown=3",
    "",  # missing user_id
    "user_id=",
    "user_id=waytoolongforit",
    "user_id=u1&k=0",
    "user_id=u1&k=51",
    "user_id=u1&k=&explain=maybe",
    "user_id=u1&k=abc&now=-1",
    "user_id=u1&now=nan",
    "user_id=u1&exclude=a&exclude=b&exclude=c&exclude=d",
    "user_id=boom",
]


@pytest.mark.parametrize("query", QUERIES)
def test_lean_handler_answers_as_fastapi_does(query: str) -> None:
    client = TestClient(_app())
    plain = client.get(f"/plain?{query}")
    lean = client.get(f"/lean?{query}")
    assert (lean.status_code, lean.json()) == (plain.status_code, plain.json())


def test_lean_route_keeps_the_openapi_entry() -> None:
    schema = TestClient(_app()).get("/openapi.json").json()["paths"]
    plain = schema["/plain"]["get"]["parameters"]
    lean = schema["/lean"]["get"]["parameters"]
    assert [p["name"] for p in lean] == ["user_id", "k", "explain", "now", "exclude"]
    assert lean == plain


def test_a_route_with_a_guard_runs_fastapi_handler() -> None:
    CALLS.clear()
    got = TestClient(_app(guarded=True)).get("/lean?user_id=u1")
    assert got.status_code == 401 and CALLS == ["guard"]


def test_recommend_uses_the_lean_handler() -> None:
    """The served ``/recommend`` route is a ``QueryRoute`` (no token configured)."""
    from funnelrec.serve.routes import recommend

    class _Settings:
        max_k = 50

    class _State:
        settings = _Settings()

    api = recommend.router(_State(), None)  # type: ignore[arg-type]
    route: Any = api.routes[0]
    assert isinstance(route, QueryRoute)
    assert route.get_route_handler().__qualname__.startswith("QueryRoute.")
