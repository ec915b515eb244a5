"""Shared bits of the route modules."""

import inspect
import types
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ValidationError, create_model

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


class QueryRoute(APIRoute):
    """An ``APIRoute`` for a hot endpoint that takes query parameters only: the same OpenAPI
    entry and the same 422 errors (``loc = ("query", name)``, pydantic's messages), but the
    parameters are read and validated by one pydantic model built once from the endpoint's
    declared ``Query`` fields, instead of FastAPI's per-request dependency solving (about
    0.1 ms of CPU a request). Routes with dependencies (a token guard), a body or other
    parameter kinds use FastAPI's handler unchanged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        other = (
            dependant.dependencies,
            dependant.body_params,
            dependant.path_params,
            dependant.header_params,
            dependant.cookie_params,
        )
        if any(other) or not inspect.iscoroutinefunction(dependant.call):
            return super().get_route_handler()
        fields = dependant.query_params
        model = create_model(  # type: ignore[call-overload]
            f"{self.name}_query",
            **{f.name: (f.field_info.annotation, f.field_info) for f in fields},
        )
        many = {f.alias for f in fields if _is_sequence(f.field_info.annotation)}
        names = {f.alias: f.name for f in fields}
        endpoint = dependant.call
        assert endpoint is not None

        async def handler(request: Request) -> Response:
            query = request.query_params
            given: dict[str, Any] = {}
            for alias, name in names.items():
                if alias in many:
                    values = query.getlist(alias)
                    if values:  # as FastAPI: an empty list takes the default
                        given[name] = values
                elif alias in query:
                    given[name] = query[alias]  # the last value, as FastAPI
            try:
                parsed = model.model_validate(given)
            except ValidationError as bad:
                errors = [{**e, "loc": ("query", *e["loc"])} for e in bad.errors()]
                raise RequestValidationError(errors) from None
            response: Response = await endpoint(**dict(parsed))
            return response

        return handler


def _is_sequence(annotation: Any) -> bool:
    """Whether a query parameter's annotation takes repeated values (``list[str]``, ...)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not type(None))
    return (origin or annotation) in (list, tuple, set, frozenset)
