"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ambiance import __version__
from ambiance.config import Settings
from ambiance.service import Ambiance

from . import auth, docs, errors
from .routes import (
    areas,
    commands,
    events,
    health,
    metrics,
    profiles,
    rooms,
    routines,
    scenes,
    sessions,
)

API_PREFIX = "/api/v1"
WEB = Path(__file__).parent / "web"  # the phone app: static files, no build step
# The app's files at the root (the service worker's scope is the folder it is served from).
WEB_FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "sw.js": "text/javascript",
    "manifest.webmanifest": "application/manifest+json",
}


def create_app(
    core: Ambiance | None = None,
    settings: Settings | None = None,
    *,
    manage_core: bool | None = None,
) -> FastAPI:
    """Build the app around a core; the app starts and stops it unless the caller does.

    By default the app manages a core it creates and leaves a core it is given alone.
    """
    owned = core is None if manage_core is None else manage_core
    service = core if core is not None else Ambiance(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await service.start()
        try:
            yield
        finally:
            if owned:
                await service.stop()

    app = FastAPI(
        title="ambiance",
        version=__version__,
        summary="Turn a room into a spa for a massage at home.",
        description="One tap (`POST /api/v1/rooms/{room}/spa`) fades the lights to a warm, "
        "dim scene and walks the giver through a routine of stages; at the end the room "
        "goes back exactly as it was.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN: api/docs.py serves them offline
        redoc_url=None,
    )
    app.state.core = service
    errors.install(app)
    config = service.settings
    auth.install(app, config.auth, config.host, service.store.tokens)
    # Everything but health needs the token when one is required (api/auth.py);
    # the event stream also takes it as ?access_token= (EventSource sends no headers).
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(rooms.router, prefix=API_PREFIX, **auth.guard(app))
    # The rooms' commands: made from the command table as it is now.
    app.include_router(commands.command_router(), prefix=API_PREFIX, **auth.guard(app))
    for module in (scenes, routines, profiles, sessions, areas):
        app.include_router(module.router, prefix=API_PREFIX, **auth.guard(app))
    app.include_router(events.router, prefix=API_PREFIX, **auth.guard(app, query=True))
    # Prometheus scrapes /metrics at the root, behind the same token rule (a bearer token).
    app.include_router(metrics.router, **auth.guard(app))

    docs.install(app)
    _serve_web(app)
    # A path with a slash too many (or too few) is redirected, with a relative Location.
    app.router.redirect_slashes = False
    app.router.default = SlashRedirect(app.router, app.router.default)

    return app


class SlashRedirect:
    """The trailing-slash redirect (`/rooms/` -> `/rooms`), to a Location of just the path
    and query; else the router's own 404.

    Starlette's built-in one writes an absolute URL from the request's Host header, so a
    forged Host (`evil.example`) made this server send a client to another site.
    """

    def __init__(self, router: APIRouter, not_found: ASGIApp) -> None:
        self.router = router
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != scope.get("root_path", "") + "/":
            other = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            if any(route.matches(other)[0] is not Match.NONE for route in self.router.routes):
                # One leading slash: `//host/...` would be a URL to another host.
                location = "/" + quote(other["path"]).lstrip("/")
                query = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                await RedirectResponse(location, 307)(scope, receive, send)
                return
        await self.not_found(scope, receive, send)


def _serve_web(app: FastAPI) -> None:
    """The phone app at `/`: index.html, its files by name, and the icons.

    Explicit routes rather than a StaticFiles mount at `/`, so that /api and /docs keep
    their own answers (a 404 or 405 under /api stays the API's error shape).
    """
    no_cache = {"Cache-Control": "no-cache"}  # revalidate: an update shows on the next load

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html", headers=no_cache)

    def serve(path: Path, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
        async def web_file() -> FileResponse:
            return FileResponse(path, media_type=media_type, headers=no_cache)

        return web_file

    for name, media_type in WEB_FILES.items():
        app.add_api_route(
            f"/{name}", serve(WEB / name, media_type), methods=["GET"], include_in_schema=False
        )

    app.mount("/icons", StaticFiles(directory=WEB / "icons"), name="icons")
