"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from ambiance.config import Settings
from ambiance.service import Ambiance, __version__

from . import errors
from .routes import events, health, profiles, rooms, routines, scenes, sessions

API_PREFIX = "/api/v1"


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
    )
    app.state.core = service
    errors.install(app)
    for module in (health, rooms, scenes, routines, profiles, sessions, events):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
