"""The API's docs pages in a real browser with no internet: /docs (Swagger UI) and /redoc.

Debian's Chromium, driven by Playwright (the phone of test_app.py), opens each page from
uvicorn on a free loopback port, with every request to anywhere but that server aborted:
the pages must render the API's operations from this server's files alone (FastAPI's own
pages, from a CDN, stay blank), under their Content-Security-Policy (a violation is a
console error here). The screenshots stay in the test's tmp_path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from ambiance.config import Settings
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.http_server import serve
from tests.web.test_app import CHROMIUM, phone

pytestmark = pytest.mark.anyio

SPA = "/api/v1/rooms/{room}/spa"
RENDERED = 15_000  # ms: ReDoc's bundle is 1 MB of script to parse on a shared machine
# ReDoc's credit line shows Redocly's logo from their CDN; the CSP's img-src refuses it
# (before any request), and the logo hides itself.
REDOCLY_LOGO = "cdn.redoc.ly/redoc/logo-mini.svg"

if not CHROMIUM.exists():  # ./scripts/test installs it from Debian
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


@asynccontextmanager
async def offline(base: str) -> AsyncIterator[tuple[Page, list[str], list[str]]]:
    """A Chromium tab that reaches `base` alone: the page, what it aborted, every error."""
    async with phone(base) as tab:
        aborted: list[str] = []

        async def only_this_server(route: Route) -> None:
            if route.request.url.startswith(base + "/"):
                await route.continue_()
            else:
                aborted.append(route.request.url)
                await route.abort()

        await tab.page.route("**/*", only_this_server)
        # A laptop's width: ReDoc folds its menu away at a phone's.
        await tab.page.set_viewport_size({"width": 1280, "height": 900})
        yield tab.page, aborted, tab.errors


def problems(aborted: list[str], errors: list[str]) -> list[str]:
    return aborted + [e for e in errors if REDOCLY_LOGO not in e]


async def test_the_api_docs_render_with_no_internet(tmp_path: Path) -> None:
    async with (
        Ambiance(Settings(data_dir=tmp_path), clock=FakeClock()) as core,
        serve(create_app(core)) as base,
        offline(base) as (page, aborted, errors),
    ):
        await page.goto(f"{base}/docs")
        await expect(page.locator('h3.opblock-tag[data-tag="rooms"]')).to_be_visible(
            timeout=RENDERED
        )
        spa = page.locator(f'.opblock-post:has(.opblock-summary-path[data-path="{SPA}"])')
        await expect(spa.locator(".opblock-summary-method")).to_have_text("POST")
        health = page.locator(".opblock-summary-path", has_text="/api/v1/health")
        await expect(health).to_be_visible()
        await page.screenshot(path=str(tmp_path / "docs.png"))
        assert problems(aborted, errors) == []

        await page.goto(f"{base}/redoc")
        menu = page.get_by_role("menuitem", name="rooms", exact=True)
        await expect(menu).to_be_visible(timeout=RENDERED)
        await expect(page.locator('[data-section-id="tag/rooms"] h2')).to_have_text("rooms")
        verb = page.locator("button", has=page.locator(".http-verb.post"), has_text=SPA)
        await expect(verb.first).to_be_visible()
        await page.screenshot(path=str(tmp_path / "redoc.png"))
        assert problems(aborted, errors) == []
