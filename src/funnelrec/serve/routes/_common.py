"""Shared bits of the route modules."""

from typing import Any

from fastapi import Depends
from fastapi.params import Depends as DependsParam

from funnelrec.serve.auth import Guard
from funnelrec.serve.schemas import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


def errors(*codes: int) -> Responses:
    """OpenAPI ``responses`` entries for error codes (all ``ErrorResponse`` bodies)."""
    return {code: {"model": ErrorResponse} for code in codes}


def guards(guard: Guard | None) -> list[DependsParam]:
    """Router dependencies: the token guard, or none when no token is configured."""
    return [] if guard is None else [Depends(guard)]
