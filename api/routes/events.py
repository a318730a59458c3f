"""Server-sent events: each room's state, pushed on every change (the page needs no polling)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ambiance.events import Event
from ambiance.service import Ambiance

from ..deps import CoreDep
from ..schemas import ERRORS, RoomView

router = APIRouter(tags=["events"], responses={404: ERRORS[404]})

KEEPALIVE = 15.0  # seconds: a comment line keeps proxies and phones from closing the stream
RETRY_MS = 2000  # how soon a browser reconnects after the stream breaks


def _frame(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def _stream(core: Ambiance, rooms: list[str], request: Request) -> AsyncIterator[str]:
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
                view = RoomView.model_validate(core.rooms[name].view())
                yield _frame("room", view.model_dump_json())
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
    room: Annotated[list[str] | None, Query(description="Rooms to follow; all by default.")] = None,
) -> StreamingResponse:
    names = room or list(core.rooms)
    for name in names:
        core.room(name)  # 404 naming an unknown room
    return StreamingResponse(
        _stream(core, names, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
