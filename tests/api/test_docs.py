"""/docs and /redoc over HTTP: pages of this server's files alone, with no inline script.

(tests/web/test_docs.py renders them in Chromium with the internet cut off.)
"""

from __future__ import annotations

import re

import pytest

from .conftest import Api

pytestmark = pytest.mark.anyio

SRC = re.compile(r'(?:src|href)="([^"]*)"')


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_a_docs_page_loads_only_this_servers_files(api: Api, path: str) -> None:
    page = await api.client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)  # no inline script
    assert "http" not in page.text  # no CDN, no outside font
    files = SRC.findall(page.text)
    assert files and all(f.startswith("/") for f in files), files
    for file in files:
        r = await api.client.get(file)
        assert r.status_code == 200, file
        assert r.content, file


async def test_the_docs_pages_start_from_the_openapi_document(api: Api) -> None:
    docs = (await api.client.get("/docs")).text
    assert 'data-openapi-url="/openapi.json"' in docs
    assert '<redoc spec-url="/openapi.json">' in (await api.client.get("/redoc")).text
    r = await api.client.get("/docs/assets/swagger-init.js")
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle(" in r.text
    # FastAPI's OAuth2 helper page is gone with its inline script: the API has no OAuth2.
    assert (await api.client.get("/docs/oauth2-redirect")).status_code == 404
    assert "oauth2" not in str((await api.client.get("/openapi.json")).json()).lower()
