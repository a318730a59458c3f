"""Pressure check-ins over the REST API and server-sent events (uvicorn on a loopback
port), with the built-in routines, a fake clock and the real store: the check-in in the
room's view, the answer, its refusals, the command log, and what the profile learns."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.checkins import FIRST_AFTER, PROMPTS, schedule
from ambiance.core.profiles import Profile
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.http_server import serve

pytestmark = pytest.mark.anyio

ROOM = "/api/v1/rooms/bedroom"


@asynccontextmanager
async def service(
    data_dir: Path, clock: FakeClock | None = None
) -> AsyncIterator[tuple[Ambiance, FakeClock, httpx.AsyncClient]]:
    """The service with the built-in routines (the bedroom runs `classic`)."""
    clock = clock or FakeClock()
    settings = Settings(data_dir=data_dir, rooms={"bedroom": RoomConfig(routine="classic")})
    async with Ambiance(settings, clock=clock) as core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as client:
            yield core, clock, client


async def started(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{ROOM}/spa", json=body)
    assert response.status_code == 201, response.text
    response = await client.post(f"{ROOM}/session/next")  # ready: the long strokes
    assert response.status_code == 200, response.text
    return dict(response.json()["session"])


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


async def test_a_check_in_goes_out_on_the_stream_and_the_answer_changes_the_wording(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (core, clock, _):
        core.profiles.create(Profile(name="sam", display_name="Sam", pressure="firm"))
        async with (
            serve(create_app(core)) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            client.stream("GET", "/api/v1/events", params={"room": "bedroom"}) as stream,
        ):
            room = frames(stream)
            await anext(room)
            session = await started(client, profile="sam")
            assert session["checkin"] is None
            planned = [(c["id"], c["stage"], c["at"], c["kind"]) for c in session["checkins"]]
            routine = core.room("bedroom").session.routine  # type: ignore[union-attr]
            assert planned == [(p.id, p.stage, p.at, p.kind) for p in schedule(routine)]
            assert planned[0] == ("effleurage-1", "effleurage", FIRST_AFTER, "first")
            before = session["stage"]["guidance"]["pressure"]
            assert "Use medium pressure for Sam here." in before  # effleurage: light to medium

            clock.advance(FIRST_AFTER)  # the room's timer asks it
            view = await anext(room)
            while view["session"] is None or view["session"]["checkin"] is None:
                view = await anext(room)
            checkin = view["session"]["checkin"]
            assert {k: checkin[k] for k in ("id", "stage", "kind", "answered")} == {
                "id": "effleurage-1",
                "stage": "effleurage",
                "kind": "first",
                "answered": None,
            }
            assert checkin["prompt"] == PROMPTS["first"]
            assert checkin["asked_at"] == clock.now()
            assert "held breath" in checkin["guidance"]

            answered = await client.post(
                f"{ROOM}/session/checkin", json={"answer": "softer", "id": "effleurage-1"}
            )
            assert answered.status_code == 200, answered.text
            stage = answered.json()["session"]["stage"]
            assert stage["pressure_now"] == "soft"
            assert stage["guidance"]["pressure"].startswith("They asked for softer")
            assert "Use a soft touch for Sam here." in stage["guidance"]["pressure"]
            # Every phone hears it at once.
            while view["session"]["checkin"]["answered"] is None:
                view = await anext(room)
            assert view["session"]["checkin"]["answered"] == "softer"
            now = view["session"]["checkin"]["now"]
            assert now == "They asked for softer: lighten a step, to 3-4 of 10."
            assert stage["guidance"]["pressure"].startswith(now)
            assert view["session"]["stage"]["guidance"]["pressure"] == stage["guidance"]["pressure"]
            assert view["session"]["checkins"][0]["answer"] == "softer"

        # In the session's command log.
        session_id = session["id"]
        commands = core.store.sessions.commands(session_id)
        assert [(c["action"], c["args"]) for c in commands][-1] == (
            "checkin",
            {"answer": "softer", "id": "effleurage-1"},
        )


async def test_no_open_check_in_is_a_409_and_a_bad_answer_a_422(tmp_path: Path) -> None:
    async with service(tmp_path) as (_, clock, client):
        nothing = await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        assert nothing.status_code == 409
        assert "no session is running" in nothing.json()["error"]["message"]

        await started(client)
        refused = await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "no_checkin_open"
        assert "no check-in is open to answer" in error["message"]
        assert "'effleurage-1', 60 s into 'effleurage'" in error["message"]
        assert error["detail"]["next"] == {"id": "effleurage-1", "stage": "effleurage"}

        clock.advance(FIRST_AFTER)
        for body, words in [
            ({"answer": "harder"}, "answer"),
            ({}, "answer"),
            ({"answer": "same", "id": "Effleurage 1"}, "id"),
            ({"answer": "same", "why": "x"}, "why"),
        ]:
            bad = await client.post(f"{ROOM}/session/checkin", json=body)
            assert bad.status_code == 422, (body, bad.text)
            assert words in json.dumps(bad.json()["error"]), body
        stale = await client.post(
            f"{ROOM}/session/checkin", json={"answer": "same", "id": "petrissage-1"}
        )
        assert stale.status_code == 409
        assert "'effleurage-1' is" in stale.json()["error"]["message"]
        ok = await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        assert ok.status_code == 200
        again = await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        assert again.status_code == 409
        assert "was answered (same)" in again.json()["error"]["message"]


async def test_the_answers_are_learned_at_the_end_once_and_feedback_builds_on_them(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as (core, clock, client):
        core.profiles.create(Profile(name="sam", pressure="medium"))
        session = await started(client, profile="sam")
        clock.advance(FIRST_AFTER)
        await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        await client.post(f"{ROOM}/session/goto", json={"stage": "petrissage"})
        clock.advance(45)
        await client.post(f"{ROOM}/session/checkin", json={"answer": "too_much"})
        assert core.profiles.get("sam").stage_pressure == {}  # not during the session

        stopped = await client.delete(f"{ROOM}/spa")
        assert stopped.status_code == 200
        sam = core.profiles.get("sam")
        assert sam.stage_pressure == {"effleurage": "medium", "petrissage": "soft"}
        assert sam.last_feedback == {"effleurage": "right", "petrissage": "softer"}
        assert sam.sessions == 0  # a session counts with its feedback

        # The feedback names the kneading "right": right as it was after "too much".
        given = await client.post(
            f"/api/v1/sessions/{session['id']}/feedback",
            json={"rating": 4, "pressure": {"petrissage": "right"}},
        )
        assert given.status_code == 201, given.text
        sam = core.profiles.get("sam")
        assert sam.stage_pressure == {"effleurage": "medium", "petrissage": "soft"}
        assert sam.last_feedback == {"effleurage": "right", "petrissage": "right"}
        assert sam.sessions == 1

        # Next time the kneading starts soft, and says why.
        again = await started(client, profile="sam")
        await client.post(f"{ROOM}/session/goto", json={"stage": "petrissage"})
        view = (await client.get(ROOM)).json()["session"]
        assert again["id"] != session["id"]
        assert view["stage"]["pressure_now"] == "soft"
        assert "Last time: petrissage was just right." in view["stage"]["guidance"]["pressure"]


async def test_an_answer_survives_a_restart_and_is_learned_once(tmp_path: Path) -> None:
    clock = FakeClock()
    async with service(tmp_path, clock) as (core, _, client):
        core.profiles.create(Profile(name="sam", pressure="medium"))
        await started(client, profile="sam")
        clock.advance(FIRST_AFTER)
        await client.post(f"{ROOM}/session/checkin", json={"answer": "softer"})
        await client.post(f"{ROOM}/session/goto", json={"stage": "petrissage"})
        clock.advance(45)  # asked by the timer: open when the service goes away
        assert core.room("bedroom").session.checkin_view() is not None  # type: ignore[union-attr]

    async with service(tmp_path, clock) as (core, _, client):
        view = (await client.get(ROOM)).json()["session"]
        assert view["checkin"]["id"] == "petrissage-1" and view["checkin"]["answered"] is None
        assert view["checkins"][0]["answer"] == "softer"
        assert view["stage"]["pressure_now"] == "soft"  # lighter, as asked at the strokes
        assert view["stage"]["guidance"]["pressure"].startswith("Lighter than planned")
        answered = await client.post(f"{ROOM}/session/checkin", json={"answer": "same"})
        assert answered.status_code == 200, answered.text
        # Left to run out on the clock, the session ends by its timer.
        clock.advance(3 * 3600)
        assert core.room("bedroom").session is None
        sam = core.profiles.get("sam")
        assert sam.stage_pressure == {"effleurage": "soft", "petrissage": "soft"}

    async with service(tmp_path, clock) as (core, _, _):
        assert core.profiles.get("sam").stage_pressure == {
            "effleurage": "soft",
            "petrissage": "soft",
        }


async def test_a_profile_deleted_during_the_session_stays_deleted(tmp_path: Path) -> None:
    async with service(tmp_path) as (core, clock, client):
        core.profiles.create(Profile(name="sam"))
        await started(client, profile="sam")
        clock.advance(FIRST_AFTER)
        await client.post(f"{ROOM}/session/checkin", json={"answer": "softer"})
        assert (await client.delete("/api/v1/profiles/sam")).status_code == 204
        assert (await client.delete(f"{ROOM}/spa")).status_code == 200
        assert (await client.get("/api/v1/profiles/sam")).status_code == 404
