"""JSON errors: every error response is ``{"error", "message", "detail"}``; 422s name the
field (``query.k``, ``body.events.3.timestamp``), 503 means the store failed (nothing written).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from funnelrec.serve.store.base import StoreError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its status, short kind, message and optional details."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.detail = status, error, message, detail
        self.headers = headers


def error_body(error: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "message": message, "detail": detail}


def field_error(loc: Sequence[str | int], message: str) -> RequestValidationError:
    """A validation error of one field, answered like pydantic's (HTTP 422)."""
    return RequestValidationError([{"loc": tuple(loc), "msg": message, "type": "value_error"}])


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def api_error_response(exc: ApiError) -> JSONResponse:
    """The response to an ``ApiError`` (its status, body and headers)."""
    return JSONResponse(error_body(exc.error, exc.message, exc.detail), exc.status, exc.headers)


def store_error_response(path: str, exc: StoreError) -> JSONResponse:
    """HTTP 503 for a store failure on ``path`` (logged)."""
    log.error("store failure on %s: %s", path, exc)
    body = error_body("store unavailable", f"{exc}; nothing was written, retry later")
    return JSONResponse(body, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e["loc"]), "message": str(e["msg"]), "type": e.get("type")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(error_body("invalid request", message, errors), status_code=422)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> JSONResponse:
        return store_error_response(request.url.path, exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8)
            errors = [{"field": "body", "message": str(exc.detail), "type": "body_parsing"}]
            body = error_body("invalid request", f"body: {exc.detail}", errors)
            return JSONResponse(body, status_code=422)
        phrase = HTTPStatus(exc.status_code).phrase.lower()
        return JSONResponse(
            error_body(phrase, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        body = error_body("internal error", f"{type(exc).__name__} while serving the request")
        return JSONResponse(body, status_code=500)
