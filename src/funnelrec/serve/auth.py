"""Bearer-token guards. Tokens are compared in constant time (``hmac.compare_digest``) and
never logged or echoed. Missing/malformed credentials: 401; wrong token: 403."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from funnelrec.serve.errors import ApiError

Guard = Callable[..., Awaitable[None]]
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_guard(token: SecretStr | None, *, required: bool, scheme_name: str) -> Guard | None:
    """A dependency checking ``Authorization: Bearer <token>``.

    Args:
        token: the expected token; ``None`` = no token configured.
        required: when no token is configured, refuse everything (admin and catalogue
            routes); otherwise (public routes) there is no guard at all (``None``).
        scheme_name: name of the security scheme in the OpenAPI schema.
    """
    if token is None and not required:
        return None
    bearer = HTTPBearer(auto_error=False, scheme_name=scheme_name)
    expected = token.get_secret_value().encode() if token is not None else None

    async def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if expected is None:
            raise ApiError(403, "forbidden", f"route disabled: no {scheme_name} configured")
        if credentials is None:
            raise ApiError(401, "unauthorized", "missing bearer token", headers=CHALLENGE)
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise ApiError(403, "forbidden", "invalid bearer token")

    return guard
