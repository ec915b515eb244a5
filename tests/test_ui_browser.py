"""End to end in a real browser: headless Chromium (Playwright driving Debian's ``chromium``)
against a real uvicorn server on loopback. Loads ``/ui``, selects a user, sees the recall
channels' candidates and the final slate, clicks an item (a real ``POST /events``) and sees
the slate change. A screenshot is kept as a test artifact (``artifacts/ui-inspector*.png``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from funnelrec.config import parse_config
from funnelrec.data.synthetic import generate
from funnelrec.pipeline import Funnel
from tests.serve.conftest import Live, funnel_config, thread_server

playwright = pytest.importorskip(
    "playwright.sync_api",
    reason="the 'playwright' package is not installed (pip install playwright)",
)
CHROMIUM = os.environ.get("FUNNELREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set FUNNELREC_CHROMIUM)",
        allow_module_level=True,
    )
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    world = generate(n_users=300, n_items=200, n_interactions=6000, seed=3)
    path = tmp_path_factory.mktemp("ui") / "funnel"
    Funnel(parse_config(funnel_config())).fit(world).save(path)
    store = f"sqlite:///{tmp_path_factory.mktemp('ui-store') / 'store.db'}"
    with thread_server(artifacts=path, store=store) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _slate(page: object) -> list[str]:
    items = page.locator("#slate .slate-item")  # type: ignore[attr-defined]
    return [str(items.nth(i).get_attribute("data-item")) for i in range(items.count())]


def test_inspector_select_user_click_item_slate_changes(
    live: Live, browser: object, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1400})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live.url}/ui")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    # the user picker lists known users; pick the second most active one
    options = page.locator("#user-select option")
    assert options.count() > 10
    user = str(options.nth(2).get_attribute("value"))
    page.select_option("#user-select", user)
    page.wait_for_selector("body[data-loads='1']", timeout=10_000)
    assert page.get_attribute("body", "data-user") == user

    # history with titles, one candidate list per recall channel, a slate of k items
    history = page.locator("#history li")
    assert history.count() > 0
    first_title = history.first.inner_text()
    assert "(" in first_title and len(first_title) > 8  # "title (item id)"
    channels = page.locator("#channels .channel")
    names = {str(channels.nth(i).get_attribute("data-channel")) for i in range(channels.count())}
    assert {"popular", "itemcf"} <= names
    itemcf = page.locator("#channels .channel[data-channel='itemcf'] li")
    assert itemcf.count() > 0
    dataset = live.state.current.dataset
    title = dataset.items["title"][dataset.item_ids.index(itemcf.first.get_attribute("data-item"))]
    assert itemcf.first.inner_text().startswith(title)  # candidates are shown with their titles
    assert page.locator("#scores tr").count() > 1  # pre-rank and rank scores
    before = _slate(page)
    assert len(before) == 10
    with live.client() as c:  # the page shows what the API answers
        api = c.get("/recommend", params={"user_id": user, "k": 10}).json()
    assert before == [str(i["item_id"]) for i in api["items"]]

    # click the top item: a real POST /events, then the slate is fetched again
    clicked = before[0]
    page.locator(f"#slate .slate-item[data-item='{clicked}'] button.click-btn").click()
    page.wait_for_selector("body[data-loads='2']", timeout=10_000)
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('new item')", timeout=10_000
    )
    after = _slate(page)
    assert after != before and clicked not in after
    assert page.locator("#slate .slate-item.new").count() >= 1
    top = page.locator("#history li").first
    assert top.get_attribute("data-item") == clicked and "live" in top.inner_text()
    events = live.state.store.events(user)
    assert [(e.item_id, e.type) for e in events] == [(clicked, "click")]
    assert not errors, errors

    # a typed, unknown user gets cold-start items and an empty history
    page.fill("#user-input", "newcomer-42")
    page.click("#load")
    page.wait_for_selector("body[data-user='newcomer-42']", timeout=10_000)
    assert "cold start" in page.inner_text("#status")
    assert page.locator("#slate .slate-item").count() == 10
    assert page.inner_text("#history") == "no history (cold start)"
    page.select_option("#user-select", user)  # back to the user, for the screenshot
    page.wait_for_selector(f"body[data-user='{user}']", timeout=10_000)

    shot = tmp_path / "ui-inspector.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "ui-inspector.png")
    page.close()


def test_inspector_assets_and_read_only_routes(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=10.0) as c:
        page = c.get("/ui")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/ui/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")
        assert c.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
        missing = c.get("/ui/nope.js")
        assert missing.status_code == 404 and "nope.js" in missing.json()["message"]
        users = c.get("/users", params={"limit": 5}).json()["users"]
        counts = [u["n_interactions"] for u in users]
        assert len(users) == 5 and counts == sorted(counts, reverse=True)
        lookup = c.post("/items/lookup", json={"item_ids": ["i0001", "ghost"]})
        items = lookup.json()["items"]
        assert items[0]["known"] and items[0]["title"] and not items[1]["known"]
        assert c.post("/items/lookup", json={"item_ids": []}).status_code == 422
        cold = c.get("/history", params={"user_id": "nobody"}).json()
        assert cold == {"user_id": "nobody", "known_user": False, "items": []}
