"""Server-sent events: each room's state, pushed on every change (the page needs no polling)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints

from ambiance.config import ROOM_NAME
from ambiance.core.events import Event
from ambiance.service import Ambiance

from ..deps import CoreDep
from ..schemas import ERRORS

router = APIRouter(tags=["events"], responses={404: ERRORS[404], 422: ERRORS[422]})

KEEPALIVE = 15.0  # seconds: a comment line keeps proxies and phones from closing the stream
RETRY_MS = 2000  # how soon a browser reconnects after the stream breaks
MAX_ROOMS = 100  # rooms one stream follows (a name twice counts twice)


# How long a room's frame is handed out again: long enough for every subscriber to take
# the same one after a change, short enough that the time left in it stays right.
FRAME_TTL = 0.25


def _frame(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


class RoomFrames:
    """Each room's latest `room` frame, made once per change for all subscribers: with
    two hundred phones and screens on one room, a stage change is one view and one JSON
    dump, not two hundred."""

    def __init__(self, core: Ambiance) -> None:
        self.core = core
        self._changes: dict[str, int] = {}
        self._made: dict[str, tuple[int, float, str]] = {}  # changes, loop time, frame

    def start(self) -> None:
        self.core.bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self._changes[event.room] = self._changes.get(event.room, 0) + 1

    def frame(self, name: str) -> str:
        changes = self._changes.get(name, 0)
        now = asyncio.get_running_loop().time()
        made = self._made.get(name)
        if made is not None and made[0] == changes and now - made[1] < FRAME_TTL:
            return made[2]
        text = _frame("room", self.core.rooms[name].view().model_dump_json())
        self._made[name] = (changes, now, text)
        return text


def _frames(request: Request, core: Ambiance) -> RoomFrames:
    """The app's one RoomFrames (made at the first subscriber)."""
    frames: RoomFrames | None = getattr(request.app.state, "room_frames", None)
    if frames is None or frames.core is not core:
        frames = RoomFrames(core)
        frames.start()
        request.app.state.room_frames = frames
    return frames


async def _stream(
    core: Ambiance, frames: RoomFrames, rooms: list[str], request: Request
) -> AsyncIterator[str]:
    dirty: set[str] = set(rooms)  # every room once at the start: the page's first picture
    changed = asyncio.Event()
    changed.set()

    def on_event(event: Event) -> None:
        if event.room in rooms:
            dirty.add(event.room)
            changed.set()

    unsubscribe = core.bus.subscribe(on_event)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while not await request.is_disconnected():
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            changed.clear()
            # A burst of events (stage, lights, phones) becomes one message per room.
            for name in sorted(dirty):
                yield frames.frame(name)
            dirty.clear()
    finally:
        unsubscribe()


@router.get(
    "/events",
    summary="A stream of room states (text/event-stream), one `room` event per change",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    core: CoreDep,
    request: Request,
    room: Annotated[
        list[Annotated[str, StringConstraints(pattern=ROOM_NAME)]] | None,
        Query(max_length=MAX_ROOMS, description="Rooms to follow; all by default."),
    ] = None,
) -> StreamingResponse:
    names = room or list(core.rooms)
    for name in names:
        core.room(name)  # 404 naming an unknown room
    return StreamingResponse(
        _stream(core, _frames(request, core), names, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
