"""Shared bits of the route modules."""

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel
from pydantic_core import to_json

from funnelrec.serve.auth import Guard
from funnelrec.serve.errors import ApiError
from funnelrec.serve.schemas import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


DESCRIPTIONS = {
    401: "missing bearer token",
    403: "wrong bearer token, or this API is disabled (no token configured)",
    404: "not found (the message names what)",
    413: "payload too large (the message gives the limit)",
    422: "invalid request: the message names the field and the bad value",
    503: "store unavailable: nothing was written, retry later",
}
# Answered by the HTTP server before the app sees the request (e.g. a request line longer
# than 16 KiB): a plain-text body, so documented as such.
MALFORMED = {
    "description": "malformed HTTP request (answered by the HTTP server, plain text)",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


def json_response(body: Any, status_code: int = 200) -> Response:
    """``body`` (plain Python values) as a JSON response, serialised by pydantic-core (about
    4x faster than the standard library's encoder; non-finite floats become ``null``)."""
    return Response(to_json(body), status_code, media_type="application/json")


def errors(*codes: int, notes: dict[int, str] | None = None) -> Responses:
    """OpenAPI ``responses`` entries for error codes (all ``ErrorResponse`` bodies but the
    HTTP server's 400); ``notes`` replace the default description of a code."""
    described = {**DESCRIPTIONS, **(notes or {})}
    out: Responses = {400: MALFORMED}
    for code in codes:
        out[code] = {"model": ErrorResponse, "description": described.get(code, "error")}
    return out


def batch_write_route(
    api: APIRouter,
    method: Literal["POST", "PUT"],
    path: str,
    model: type[BaseModel],
    summary: str,
    note_422: str,
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """Decorator registering on ``api`` a route that stores a batch (``POST /events``,
    ``PUT /items``): it answers ``model`` and documents the errors every such route may give:
    token (401, 403), batch size (413), validation (422, described by ``note_422``), store (503).
    """
    responses = errors(401, 403, 413, 422, 503, notes={422: note_422})
    return api.api_route(
        path, methods=[method], response_model=model, responses=responses, summary=summary
    )


def guards(guard: Guard | None) -> list[DependsParam]:
    """Router dependencies: the token guard, or none when no token is configured."""
    return [] if guard is None else [Depends(guard)]


def check_batch_size(n: int, limit: int, what: str) -> None:
    """HTTP 413 naming the batch size and the limit when a batch of ``n`` ``what`` (events,
    items) is larger than ``limit``."""
    if n > limit:
        raise ApiError(413, "payload too large", f"{n} {what} in one batch; the limit is {limit}")
