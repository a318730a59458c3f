"""Dependencies for the routes, as `Annotated` aliases.

They are `async def` although none awaits: FastAPI runs a plain `def` dependency in its
thread pool, and those two thread hops per request were a quarter of a tap's time to
reach the room."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request

from ambiance.config import ROOM_NAME
from ambiance.core.room import Room
from ambiance.core.scenes import NAME_PATTERN, Library
from ambiance.service import Ambiance


def name_in_path(what: str, example: str) -> Any:
    """A `{name}` path parameter: the pattern every name of `what` has (else a 422)."""
    return Path(pattern=NAME_PATTERN, description=f"The {what}'s name.", examples=[example])


async def get_core(request: Request) -> Ambiance:
    core: Ambiance = request.app.state.core
    return core


CoreDep = Annotated[Ambiance, Depends(get_core)]


async def get_room(
    core: CoreDep,
    room: Annotated[
        str,
        Path(
            pattern=ROOM_NAME, description="The room's name from the config.", examples=["bedroom"]
        ),
    ],
) -> Room:
    return core.room(room)  # NotFound -> 404 naming the room


RoomDep = Annotated[Room, Depends(get_room)]


async def get_library(core: CoreDep) -> Library:
    if core.library is None:  # only before start(); the app starts the core first
        raise RuntimeError("scenes are not loaded yet")
    return core.library


LibraryDep = Annotated[Library, Depends(get_library)]
