"""``GET /recommend`` without FastAPI's routing and parameter validation (an ASGI middleware).

FastAPI's routing, dependency solving and query validation were about a third of the event
loop's CPU under load (py-spy of ``benchmarks/serve.py`` on ml-100k). This middleware
answers a ``GET /recommend`` whose query is in canonical form, one that the FastAPI route
would accept with the same values, by calling the route's own ``recommend_body``; every other
request, a bad or unusual parameter, a repeated one, a body, a token not given exactly as
``Bearer <token>``, goes on to the FastAPI route, which validates it, answers the documented
error and documents the API. So the fast path changes cost, never an answer: a test sends the
same queries through both paths and compares.

Canonical form: ``user_id`` once (1-256 characters); ``k`` at most once, decimal digits without
a sign or leading zero, ``1..max_k``; ``explain`` at most once, ``true``/``false``/``1``/``0``;
``now`` at most once, digits with an optional fraction, ``0..MAX_TIME``; ``exclude`` up to 1000
times. Other query keys are ignored, as by the route.
"""

from __future__ import annotations

import hmac
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from pydantic import SecretStr
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from funnelrec.serve.errors import ApiError, api_error_response, store_error_response
from funnelrec.serve.routes.recommend import EXCLUDE_MAX, USER_ID_MAX_LENGTH, recommend_body
from funnelrec.serve.schemas import MAX_TIME
from funnelrec.serve.state import ServeState
from funnelrec.serve.store.base import StoreError

PATH = "/recommend"
_K = re.compile(r"[1-9][0-9]{0,8}")
_TIME = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_BOOL = {"true": True, "false": False, "1": True, "0": False}
_SCALARS = ("user_id", "k", "explain", "now")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class Params(NamedTuple):
    """A canonical ``/recommend`` query, parsed."""

    user_id: str
    k: int | None
    explain: bool
    now: float | None
    exclude: list[str]


def parse_canonical(query_string: bytes, max_k: int) -> Params | None:
    """The query's parameters when it is in canonical form, else ``None`` (let the route
    validate it). Decoded as Starlette does (latin-1 bytes, percent-decoding as UTF-8)."""
    scalars: dict[str, str] = {}
    exclude: list[str] = []
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == "exclude":
            exclude.append(value)
        elif key in _SCALARS:
            if key in scalars:
                return None
            scalars[key] = value
    user_id = scalars.get("user_id")
    if user_id is None or not 1 <= len(user_id) <= USER_ID_MAX_LENGTH:
        return None
    if len(exclude) > EXCLUDE_MAX:
        return None
    k: int | None = None
    if "k" in scalars:
        if not _K.fullmatch(scalars["k"]) or int(scalars["k"]) > max_k:
            return None
        k = int(scalars["k"])
    explain = _BOOL.get(scalars.get("explain", "false"))
    if explain is None:
        return None
    now: float | None = None
    if "now" in scalars:
        if not _TIME.fullmatch(scalars["now"]) or float(scalars["now"]) > MAX_TIME:
            return None
        now = float(scalars["now"])
    return Params(user_id, k, explain, now, exclude)


class RecommendFastPath:
    """ASGI middleware answering canonical ``GET /recommend`` requests (see the module doc).

    Args:
        app: the rest of the application (the FastAPI router).
        state: the server's state (the funnel, the loop, the settings).
        token: the public API token, when one is configured.
        route: what request metrics label the request with (the FastAPI route of ``/recommend``).
    """

    def __init__(
        self, app: ASGIApp, state: ServeState, token: SecretStr | None, route: Any
    ) -> None:
        self.app = app
        self.state = state
        self.authorization = None
        if token is not None:
            self.authorization = b"Bearer " + token.get_secret_value().encode()
        self.route = route
        self.answered = 0  # requests answered here (the rest went to the route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = None
        http = scope["type"] == "http"
        if http and scope["path"] == PATH and scope["method"] == "GET" and self._plain(scope):
            params = parse_canonical(scope["query_string"], self.state.settings.max_k)
        if params is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        self.answered += 1
        try:
            body = await recommend_body(self.state, *params)
        except ApiError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        except StoreError as exc:
            await store_error_response(PATH, exc)(scope, receive, send)
            return
        content = to_json(body)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _plain(self, scope: Scope) -> bool:
        """No request body, and the token (when one is configured) given exactly."""
        authorization = None
        for name, value in scope["headers"]:
            if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                return False
            if name == b"authorization":
                authorization = value
        if self.authorization is None:
            return True
        return authorization is not None and hmac.compare_digest(authorization, self.authorization)
