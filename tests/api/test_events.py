"""Server-sent events over a real HTTP connection (uvicorn on a loopback port)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.routes.events import RoomFrames
from tests.api.conftest import Api
from tests.http_server import Server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server(api: Api) -> AsyncIterator[str]:
    config = uvicorn.Config(create_app(api.core), host="127.0.0.1", port=0, log_level="warning")
    server = Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.ready.wait(), 10)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


async def test_the_stream_follows_the_room(api: Api, server: str) -> None:
    params = {"room": "bedroom"}
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", "/api/v1/events", params=params) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = events(r)
        kind, first = await anext(stream)
        assert (kind, first["name"], first["session"]) == ("room", "bedroom", None)

        await client.post("/api/v1/rooms/bedroom/spa")
        kind, view = await anext(stream)
        while view["session"] is None or not view["lights"]["synced"]:
            kind, view = await anext(stream)
        assert view["session"]["stage"]["name"] == "prepare"

        await client.post("/api/v1/rooms/bedroom/session/next")
        while view["session"]["stage"]["name"] != "a":
            kind, view = await anext(stream)
        assert view["session"]["stage"]["remaining"] == 60


async def test_an_unknown_room_is_a_404(api: Api, server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        r = await client.get("/api/v1/events", params={"room": "attic"})
        assert r.status_code == 404
        assert "'attic'" in r.json()["error"]["message"]


async def test_many_subscribers_share_one_frame_per_change(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = RoomFrames(api.core)
    frames.start()
    views = 0
    room = api.core.room("bedroom")
    real_view = room.view

    def counted_view() -> dict[str, Any]:
        nonlocal views
        views += 1
        return real_view()

    monkeypatch.setattr(room, "view", counted_view)
    first = frames.frame("bedroom")
    assert all(frames.frame("bedroom") is first for _ in range(200))  # one change, one view
    assert views == 1
    room.start_spa()
    after = frames.frame("bedroom")
    assert after != first and '"session":{' in after  # the change made a new frame
    assert views == 2
    # An old frame is not handed out for ever: the time left in it would go stale.
    monkeypatch.setattr("api.routes.events.FRAME_TTL", 0.0)
    assert frames.frame("bedroom") is not after
    assert views == 3
