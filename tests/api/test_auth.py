"""Access control and HTTP hardening: the token, open routes, headers, CORS, body size."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ambiance.config import RoomConfig, Settings
from ambiance.infra.auth import AuthSettings
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import Tokens
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import make_library
from tests.http_server import serve

pytestmark = pytest.mark.anyio

PAGE_SHELL = [
    "/",
    "/app.js",
    "/app.css",
    "/sw.js",
    "/manifest.webmanifest",
    "/icons/icon-192.png",
]
OPEN_DOCS = ["/docs", "/openapi.json", "/redoc"]
PATH_VALUES = {"room": "bedroom", "name": "sam", "session_id": "1", "action": "next"}


@dataclass
class Secured:
    app: FastAPI
    client: httpx.AsyncClient
    core: Ambiance
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def settings_for(tmp_path: Path, **auth: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        host=auth.pop("host", "127.0.0.1"),
        rooms={"bedroom": RoomConfig(routine="quick")},
        auth=AuthSettings(**auth),
    )


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    token = Tokens(tmp_path).reset()
    core = Ambiance(
        settings_for(tmp_path, required="always", max_body_bytes=2048),
        clock=FakeClock(),
        library=make_library(),
    )
    async with core:
        app = create_app(core)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as client:
            yield Secured(app, client, core, token)


def protected_calls(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every (method, path) of the API but health and the event stream.

    From the app's OpenAPI document, which FastAPI builds from every route it has
    (this FastAPI's `app.routes` holds lazily included routers, not the routes), so a new
    route cannot be forgotten here.
    """
    for template, operations in app.openapi()["paths"].items():
        if template in ("/api/v1/health", "/api/v1/events"):
            continue
        path = re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], template)
        for method in sorted(operations):
            yield method.upper(), path


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["code"] == "unauthorized"
    assert "ambiance token --reset" in error["message"]


async def test_every_protected_route_needs_the_token(secured: Secured) -> None:
    calls = list(protected_calls(secured.app))
    assert len(calls) > 20  # the walk found the API
    assert ("POST", "/api/v1/rooms/bedroom/spa") in calls
    for method, path in calls:
        assert_unauthorized(await secured.client.request(method, path))
        wrong = {"Authorization": f"Bearer {secured.token}x"}
        assert_unauthorized(await secured.client.request(method, path, headers=wrong))
        basic = {"Authorization": f"Basic {secured.token}"}
        assert_unauthorized(await secured.client.request(method, path, headers=basic))
        r = await secured.client.request(method, path, headers=secured.auth)
        assert r.status_code != 401, (method, path, r.text)
        assert r.status_code < 500, (method, path, r.text)
        if method == "GET" and "{" not in path and path.count("/") <= 3:
            assert r.status_code == 200, (method, path, r.text)
    # The events route is behind it too (the stream itself is tested over uvicorn).
    assert_unauthorized(await secured.client.get("/api/v1/events"))


async def test_the_token_works_for_a_whole_session(secured: Secured) -> None:
    r = await secured.client.post("/api/v1/rooms/bedroom/spa", headers=secured.auth)
    assert r.status_code == 201, r.text
    r = await secured.client.delete("/api/v1/rooms/bedroom/spa", headers=secured.auth)
    assert r.status_code == 200, r.text


async def test_health_the_page_shell_and_the_docs_stay_open(secured: Secured) -> None:
    assert (await secured.client.get("/api/v1/health")).status_code == 200
    for path in PAGE_SHELL + OPEN_DOCS:
        r = await secured.client.get(path)
        assert r.status_code == 200, path


async def test_access_token_in_the_query_only_for_the_event_stream(secured: Secured) -> None:
    query = {"access_token": secured.token}
    assert_unauthorized(await secured.client.get("/api/v1/rooms", params=query))
    assert_unauthorized(await secured.client.post("/api/v1/rooms/bedroom/spa", params=query))
    async with serve(secured.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        bad = await c.get("/api/v1/events", params={"access_token": "nope", "room": "bedroom"})
        assert_unauthorized(bad)
        async with c.stream("GET", "/api/v1/events", params={**query, "room": "bedroom"}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    assert '"name":"bedroom"' in line
                    break
        async with c.stream("GET", "/api/v1/events", headers=secured.auth) as r:
            assert r.status_code == 200


async def test_the_token_is_compared_in_constant_time(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert (await secured.client.get("/api/v1/rooms", headers=secured.auth)).status_code == 200
    assert_unauthorized(
        await secured.client.get("/api/v1/rooms", headers={"Authorization": "Bearer x"})
    )
    assert len(calls) == 2


async def test_the_token_never_reaches_a_log(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    query = {"access_token": secured.token}
    await secured.client.get("/api/v1/rooms", headers=secured.auth)
    await secured.client.post("/api/v1/rooms/bedroom/spa", headers=secured.auth)
    await secured.client.get("/api/v1/rooms/bedroom", params=query)
    await secured.client.delete("/api/v1/rooms/bedroom/spa", headers=secured.auth)
    async with serve(secured.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        access_log = logging.getLogger("uvicorn.access")  # propagate=False: listen to it
        access_log.setLevel(logging.DEBUG)
        access_log.addHandler(caplog.handler)
        try:
            async with c.stream("GET", "/api/v1/events", params=query) as r:
                assert r.status_code == 200
        finally:
            access_log.removeHandler(caplog.handler)
    assert caplog.records  # the cycle did log
    # The test's own HTTP client (httpx, httpcore) logs the URLs it asks for; the
    # service's records are everything else, uvicorn's access log included.
    service = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "uvicorn.access" for r in service)
    for record in service:
        assert secured.token not in record.getMessage()
        assert secured.token not in str(record.args)


@pytest.mark.parametrize(
    ("host", "required", "needed"),
    [
        ("127.0.0.1", "auto", False),
        ("::1", "auto", False),
        ("localhost", "auto", False),
        ("0.0.0.0", "auto", True),
        ("192.168.1.5", "auto", True),
        ("127.0.0.1", "always", True),
        ("0.0.0.0", "never", False),
    ],
)
async def test_when_a_token_is_required(
    tmp_path: Path, host: str, required: str, needed: bool
) -> None:
    token = Tokens(tmp_path).reset()
    core = Ambiance(settings_for(tmp_path, host=host, required=required), library=make_library())
    app = create_app(core, manage_core=False)
    async with (
        core,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ambiance"
        ) as client,
    ):
        r = await client.get("/api/v1/rooms")
        assert r.status_code == (401 if needed else 200)
        ok = await client.get("/api/v1/rooms", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        schemes = app.openapi().get("components", {}).get("securitySchemes", {})
        assert ("token" in schemes) is needed


async def test_a_required_token_is_made_when_there_is_none(tmp_path: Path) -> None:
    core = Ambiance(settings_for(tmp_path, required="always"), library=make_library())
    create_app(core)
    assert Tokens(tmp_path).exists()


async def test_the_openapi_shows_the_bearer_scheme(secured: Secured) -> None:
    doc = secured.app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["token"]["description"],
    }
    assert schemes["access_token"]["in"] == "query"
    spa = doc["paths"]["/api/v1/rooms/{room}/spa"]["post"]
    assert spa["security"] == [{"token": []}]
    assert "401" in spa["responses"]
    assert "security" not in doc["paths"]["/api/v1/health"]["get"]
    assert {"token": []} in doc["paths"]["/api/v1/events"]["get"]["security"]


async def test_security_headers_on_every_response(secured: Secured) -> None:
    for path in ["/", "/app.js", "/api/v1/health", "/api/v1/rooms", "/api/v1/nope"]:
        r = await secured.client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    docs = await secured.client.get("/docs")
    # Swagger UI from this server's files (api/docs.py): the page's own CSP.
    assert docs.headers["content-security-policy"] == r.headers["content-security-policy"]
    assert docs.headers["x-frame-options"] == "DENY"
    # ReDoc makes its styles inline as it renders; its scripts are still files from here.
    csp = (await secured.client.get("/redoc")).headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self' 'unsafe-inline';" in csp
    assert "unsafe-eval" not in csp and "http" not in csp


async def test_the_page_has_no_inline_script_or_style() -> None:
    html = (Path(__file__).parents[2] / "api" / "web" / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


async def test_cors_is_closed_by_default(secured: Secured) -> None:
    origin = {"Origin": "https://evil.example"}
    r = await secured.client.get("/api/v1/health", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    pre = await secured.client.options(
        "/api/v1/rooms",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in pre.headers


async def test_cors_allows_the_configured_origins_only(tmp_path: Path) -> None:
    allowed = "https://ha.local:8123"
    core = Ambiance(settings_for(tmp_path, cors_origins=[allowed]), library=make_library())
    app = create_app(core, manage_core=False)
    async with (
        core,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ambiance"
        ) as client,
    ):
        r = await client.get("/api/v1/health", headers={"Origin": allowed})
        assert r.headers["access-control-allow-origin"] == allowed
        pre = await client.options(
            "/api/v1/rooms/bedroom/spa",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == allowed
        other = await client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_a_too_large_body_is_a_413(secured: Secured) -> None:
    big = b'{"name": "' + b"x" * 4096 + b'"}'
    headers = {**secured.auth, "Content-Type": "application/json"}
    r = await secured.client.post("/api/v1/profiles", content=big, headers=headers)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"
    assert r.headers["x-content-type-options"] == "nosniff"
    # A body under the limit still goes through.
    r = await secured.client.post("/api/v1/profiles", json={"name": "sam"}, headers=headers)
    assert r.status_code == 201, r.text


async def test_a_too_large_chunked_body_is_a_413(secured: Secured) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    async def small() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"kim"}'

    headers = {**secured.auth, "Content-Type": "application/json"}
    async with serve(secured.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        r = await c.post("/api/v1/profiles", content=chunks(), headers=headers)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "request_too_large"
        r = await c.post("/api/v1/profiles", content=small(), headers=headers)
        assert r.status_code == 201, r.text


async def test_the_trailing_slash_redirect_stays_on_this_server(secured: Secured) -> None:
    """The redirect's Location is the path (and query) alone, whatever Host the request
    says: Starlette's own wrote `http://<Host header>/...`, a way to send a client away."""
    forged = {"Host": "evil.example"}
    async with serve(secured.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        r = await c.get("/api/v1/rooms/", headers=forged)
        assert (r.status_code, r.headers["location"]) == (307, "/api/v1/rooms")
        r = await c.get("/api/v1/sessions/?limit=1&room=bedroom", headers=forged)
        assert r.headers["location"] == "/api/v1/sessions?limit=1&room=bedroom"
        r = await c.post("/api/v1/rooms/bedroom/spa/", headers={**forged, **secured.auth})
        assert (r.status_code, r.headers["location"]) == (307, "/api/v1/rooms/bedroom/spa")
        # Followed, it reaches the route (behind the token as ever).
        r = await c.get("/api/v1/rooms/", headers=secured.auth, follow_redirects=True)
        assert r.status_code == 200, r.text
        assert [room["name"] for room in r.json()] == ["bedroom"]
        # A path that is no route either way is the API's 404, not a redirect.
        r = await c.get(f"{base}//evil.example/", headers=forged)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
        assert r.json()["error"]["message"] == "no such endpoint: GET //evil.example/"
