"""``GET /ui``: the funnel inspector, a static page (HTML/JS/CSS shipped in ``serve/ui/``)
that calls the public API: ``/users``, ``/history``, ``/items/lookup``,
``/recommend?explain=true`` and ``/events``. The page itself holds no data, so it needs no
token; with ``api_token`` set, open it as ``/ui?token=...`` and the page sends the token with
its API calls."""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from funnelrec.serve.errors import ApiError

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


def _asset(name: str) -> str:
    return (resources.files("funnelrec.serve") / "ui" / name).read_text(encoding="utf-8")


def router() -> APIRouter:
    api = APIRouter(tags=["inspect"])
    page = _asset("index.html")
    assets = {name: (_asset(name), kind) for name, kind in ASSETS.items()}

    @api.get("/ui", response_class=HTMLResponse, summary="Funnel inspector (web page)")
    async def ui() -> HTMLResponse:
        return HTMLResponse(page)

    @api.get("/ui/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise ApiError(404, "not found", f"no inspector asset {name!r}")
        body, kind = assets[name]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    return api
