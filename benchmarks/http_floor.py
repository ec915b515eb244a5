"""The HTTP floor of ``benchmarks/serve.py --floor``: a bare ASGI app that answers every
request with one fixed JSON body (a real ``/recommend`` response, read from the file named by
``FUNNELREC_FLOOR_BODY``), served by uvicorn with the defaults ``funnelrec serve`` uses (its
event loop and HTTP parser). Its CPU per request under the same load is what the server stack
costs before any routing, validation, micro-batching, funnel or impression log.

    FUNNELREC_FLOOR_BODY=body.json python -m uvicorn http_floor:app --lifespan off
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["FUNNELREC_FLOOR_BODY"]).read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every HTTP request: status 200 and ``BODY``."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
