"""Feedback once per session, and only on what happened: over the REST API, with two
phones sending at the same moment over real HTTP (uvicorn on a loopback port)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import Api
from tests.http_server import serve

pytestmark = pytest.mark.anyio

ROOM = "/api/v1/rooms/living"  # routine `timed`: a 60 s, b 120 s, c 30 s


async def ended_session(c: httpx.AsyncClient, profile: str | None = "sam") -> str:
    """A session of `timed` in the living room, stopped in its first stage (a)."""
    body = {"profile": profile} if profile else {}
    started = await c.post(f"{ROOM}/spa", json=body)
    assert started.status_code == 201, started.text
    await c.delete(f"{ROOM}/spa")
    return str(started.json()["session"]["id"])


async def room_frames(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


async def test_two_phones_sending_at_once_are_learned_once(api: Api) -> None:
    async with (
        serve(create_app(api.core)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as one,
        httpx.AsyncClient(base_url=base, timeout=10) as two,
    ):
        await one.post("/api/v1/profiles", json={"name": "sam", "pressure": "firm"})
        session = await ended_session(one)
        async with two.stream("GET", "/api/v1/events", params={"room": "living"}) as stream:
            frames = room_frames(stream)
            first_frame = await anext(frames)
            assert first_frame["last_session"]["id"] == session
            assert first_frame["last_session"]["feedback_given"] is None

            # The same words from two phones, sent at the same moment on two connections.
            said = {"rating": 4, "pressure": {"a": "softer"}}
            path = f"/api/v1/sessions/{session}/feedback"
            answers = await asyncio.gather(one.post(path, json=said), two.post(path, json=said))
            codes = sorted(r.status_code for r in answers)
            assert codes == [201, 409], [r.text for r in answers]
            kept = next(r for r in answers if r.status_code == 201).json()
            refused = next(r for r in answers if r.status_code == 409).json()["error"]

            # The second names the first: its id, when it was given and whose it was.
            assert refused["code"] == "feedback_already_given"
            assert refused["detail"] == {"session": session, "feedback": kept["feedback"]}
            assert f"feedback {kept['feedback']['id']}" in refused["message"]
            assert kept["feedback"]["by"] == "sam"

            # Learned once: firm -> medium, not firm -> medium -> soft.
            profile = (await one.get("/api/v1/profiles/sam")).json()
            assert profile["stage_pressure"] == {"a": "medium"}
            assert profile["sessions"] == 1
            detail = (await one.get(f"/api/v1/sessions/{session}")).json()
            assert len(detail["feedback"]) == 1
            assert detail["feedback_given"] == kept["feedback"]

            # The other phone hears it on its stream: the last session says so.
            frame = await anext(frames)
            while frame["last_session"]["feedback_given"] is None:
                frame = await anext(frames)
            assert frame["last_session"]["feedback_given"] == kept["feedback"]

        # The room's own feedback route is the same once: a third try is refused too.
        again = await two.post(f"{ROOM}/feedback", json={"rating": 1})
        assert again.status_code == 409
        assert again.json()["error"]["detail"]["feedback"] == kept["feedback"]
        assert (await one.get("/api/v1/profiles/sam")).json()["sessions"] == 1


async def test_feedback_on_a_stage_never_reached_is_kept_out_and_said(api: Api) -> None:
    c = api.client
    await c.post("/api/v1/profiles", json={"name": "sam", "favourite_stage": "b"})
    session = await ended_session(c)  # stopped in a: b and c never came
    summary = (await c.get(f"/api/v1/sessions/{session}")).json()
    assert summary["reached"] == ["a"]

    said = {"rating": 3, "pressure": {"a": "firmer", "c": "softer"}, "favourite_stage": "c"}
    r = await c.post(f"/api/v1/sessions/{session}/feedback", json=said)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ignored"] == ["c"]
    assert len(body["warnings"]) == 1 and "'c' was never reached" in body["warnings"][0]
    learned = body["profile"]
    assert learned["stage_pressure"] == {"a": "firm"}
    assert learned["last_feedback"] == {"a": "firmer"}
    assert learned["favourite_stage"] == "b"  # the old one stays: c was no favourite today
    (stored,) = (await c.get(f"/api/v1/sessions/{session}")).json()["feedback"]
    assert stored["data"]["pressure"] == {"a": "firmer"}
    assert stored["data"]["favourite_stage"] is None
    assert stored["data"]["ignored"] == ["c"]
    # A stage the routine does not have is still a name that does not exist: a 404.
    other = await ended_session(c)
    r = await c.post(
        f"/api/v1/sessions/{other}/feedback", json={"rating": 3, "pressure": {"z": "firmer"}}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "stage_not_found")


async def test_the_room_and_its_session_say_what_was_reached(api: Api) -> None:
    c = api.client
    started = (await c.post(f"{ROOM}/spa")).json()
    assert started["session"]["reached"] == ["a"]
    api.clock.advance(60)  # the timer moves on to b
    await c.post(f"{ROOM}/session/goto", json={"stage": "a"})
    view = (await c.get(ROOM)).json()
    assert view["session"]["reached"] == ["a", "b"]
    await c.delete(f"{ROOM}/spa")
    view = (await c.get(ROOM)).json()
    assert view["last_session"]["reached"] == ["a", "b"]
    (summary,) = (await c.get("/api/v1/sessions", params={"room": "living"})).json()
    assert summary["reached"] == ["a", "b"]


async def test_a_session_without_a_profile_takes_one_feedback(api: Api) -> None:
    c = api.client
    session = await ended_session(c, profile=None)
    r = await c.post(f"{ROOM}/feedback", json={"rating": 5})
    assert r.status_code == 201
    assert r.json()["feedback"]["by"] is None
    r = await c.post(f"/api/v1/sessions/{session}/feedback", json={"rating": 2})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "feedback_already_given")
    assert "already given at" in r.json()["error"]["message"]
