"""Today's questions asked while getting ready, over the REST API with the built-in
routines: `POST /rooms/{room}/session/today` shapes the rest of the session as the same
answers would have at the start, a stop sign ends it before the massage (and the quiet
room can start), and after the massage has begun the answers are refused.

The expectations come from the routines as written (which areas a stage works), not from
their words, so that the routines can be rewritten without these tests changing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.areas import AREAS
from ambiance.core.engine import Session
from ambiance.core.profiles import DAY_QUESTIONS, DayCheck, Profile
from ambiance.core.scenes import Routine, builtin_scenes_dir, load_library
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.api.conftest import Api
from tests.helpers import EventLog

pytestmark = pytest.mark.anyio

LIBRARY = load_library([builtin_scenes_dir()])
ROOM = "/api/v1/rooms/bedroom"


@pytest.fixture
async def spa(tmp_path: Path) -> AsyncIterator[Api]:
    """A core with the built-in routines (classic by default) and a profile, Sam (firm)."""
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="classic")})
    clock = FakeClock()
    core = Ambiance(settings, clock=clock, library=LIBRARY)
    log = EventLog(core.bus)
    async with core:
        core.profiles.create(Profile(name="sam", display_name="Sam", pressure="firm"))
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as client:
            yield Api(client, core, clock, log)


def first_massage_area(routine: Routine) -> str:
    """An area the first timed stage of the routine (as written) works."""
    stage = next(s for s in routine.stages if s.timed)
    worked = [a for step in stage.guidance.steps for a in step.areas or () if not AREAS[a].caution]
    assert worked, f"{routine.name}: its first timed stage names no area it works"
    return worked[0]


def areas_worked(routine: Routine) -> set[str]:
    return {
        a
        for stage in routine.stages
        for step in stage.guidance.steps
        for a in step.areas or ()
        if not AREAS[a].caution
    }


def live(api: Api) -> Session:
    session = api.core.room("bedroom").session
    assert session is not None
    return session


async def start(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"{ROOM}/spa", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["session"])


async def stop(api: Api) -> None:
    assert (await api.client.delete(f"{ROOM}/spa")).status_code == 200


def test_the_questions_asked_are_every_answer_the_day_takes() -> None:
    asked = [name for name, _, _ in DAY_QUESTIONS]
    assert sorted(asked) == sorted(DayCheck.model_fields)
    where = [name for name, _, where in DAY_QUESTIONS if where]
    assert where == ["sore"]  # the one answered with areas


@pytest.mark.parametrize(
    "start_with",
    [
        pytest.param({}, id="no-profile"),
        pytest.param({"profile": "sam"}, id="profile"),
        pytest.param({"profile": "sam", "minutes": 20}, id="profile-fitted"),
        pytest.param({"minutes": 45}, id="fitted"),
    ],
)
async def test_answers_while_getting_ready_shape_the_session_as_at_the_start(
    spa: Api, start_with: dict[str, Any]
) -> None:
    written = LIBRARY.routine("classic")
    sore = first_massage_area(written)
    today = {"painkillers_or_alcohol": True, "sore": [AREAS[sore].name]}  # a plain name too

    # The same answers given with the start: what the session should be.
    await start(spa, **start_with, today=today)
    expected = live(spa)
    await stop(spa)

    session = await start(spa, **start_with)
    assert session["today"] == {
        "asking": True,
        "answered": False,
        "questions": [
            {"id": "fever_or_unwell", "text": "Fever or feeling unwell?", "where": False},
            {
                "id": "painkillers_or_alcohol",
                "text": "Painkillers or alcohol today?",
                "where": False,
            },
            {"id": "sore", "text": "Anything sore? Where?", "where": True},
            {
                "id": "swollen_calf",
                "text": "A calf that is swollen, warm and painful?",
                "where": False,
            },
        ],
    }
    before = live(spa).routine
    assert sore in areas_worked(before)
    r = await spa.client.post(f"{ROOM}/session/today", json=today)
    assert r.status_code == 200, r.text
    view = r.json()["session"]
    assert (view["id"], view["stage"]["name"]) == (session["id"], "prepare")
    assert (view["today"]["asking"], view["today"]["answered"]) == (True, True)
    assert view["status"] == "running" and view["reached"] == ["prepare"]

    now = live(spa)
    assert now.routine == expected.routine  # exactly as at the start
    assert now.scenes == expected.scenes
    assert now.fitted == expected.fitted
    assert now.routine != before
    # The sore area is left out of every stage, and the pressure is soft everywhere.
    assert sore not in areas_worked(now.routine)
    for stage in now.routine.stages:
        for step in stage.guidance.steps:
            if step.areas:
                assert step.pressure == "soft", (stage.name, step.text)
        if stage.timed and stage.guidance.steps:
            assert f"Also leave out today: {AREAS[sore].name}" in (stage.guidance.caution or "")
    if "minutes" in start_with:
        assert view["minutes"] == start_with["minutes"]
        assert view["total_duration"] == start_with["minutes"] * 60
    # Ready: the massage goes on with the answers, and the questions are over.
    r = await spa.client.post(f"{ROOM}/session/next")
    stage = r.json()["session"]["stage"]
    for detail in stage["guidance"]["step_details"]:
        assert sore not in detail["areas"]
    assert r.json()["session"]["today"] == {"asking": False, "answered": True, "questions": []}


async def test_answers_sent_again_replace_the_last_ones(spa: Api) -> None:
    written = LIBRARY.routine("classic")
    sore = first_massage_area(written)
    await start(spa, profile="sam")
    r = await spa.client.post(f"{ROOM}/session/today", json={"sore": [sore]})
    assert r.status_code == 200, r.text
    assert sore not in areas_worked(live(spa).routine)
    r = await spa.client.post(f"{ROOM}/session/today", json={"painkillers_or_alcohol": True})
    assert r.status_code == 200, r.text
    again = live(spa).routine
    assert sore in areas_worked(again)  # not sore after all: it is back
    await stop(spa)
    await start(spa, profile="sam", today={"painkillers_or_alcohol": True})
    assert live(spa).routine == again


async def test_a_stop_sign_while_getting_ready_ends_the_session_before_the_massage(
    spa: Api, caplog: pytest.LogCaptureFixture
) -> None:
    c = spa.client
    before = (await c.get(ROOM)).json()["lights"]
    session = await start(spa, profile="sam")
    started = len(spa.log.events)
    with caplog.at_level(logging.DEBUG):
        r = await c.post(f"{ROOM}/session/today", json={"fever_or_unwell": True, "sore": ["neck"]})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "no_massage_today"
    assert "ended before the massage began" in error["message"]
    assert [s["answer"] for s in error["detail"]["stop_signs"]] == ["fever_or_unwell"]
    assert error["detail"]["room_only"] == {"room_only": True}
    assert error["detail"]["session"] == session["id"]

    # Ended there and then: nothing of the massage ran, and the room goes back.
    view = (await c.get(ROOM)).json()
    assert view["session"] is None
    last = view["last_session"]
    assert (last["id"], last["status"], last["end_reason"]) == (
        session["id"],
        "stopped",
        "not_today",
    )
    assert last["reached"] == ["prepare"]
    kinds = [e.kind for e in spa.log.events[started:]]
    assert "stage.changed" not in kinds
    ended = next(e for e in spa.log.events[started:] if e.kind == "session.ended")
    assert (ended.data["stage"], ended.data["reason"]) == ("prepare", "not_today")
    assert await spa.core.room("bedroom").settle(5)
    assert (await c.get(ROOM)).json()["lights"]["lights"] == before["lights"]

    # The quiet room, without the massage, can start next.
    quiet = await start(spa, profile="sam", room_only=True)
    assert quiet["routine"] == "quiet-room"
    assert quiet["today"]["asking"] is False

    # The answers are kept nowhere: not in the log, the history's commands, the room's view.
    history = (await c.get("/api/v1/sessions")).json()
    detail = (await c.get(f"/api/v1/sessions/{session['id']}")).json()
    assert history[1]["id"] == session["id"]
    assert [(x["action"], x["args"]) for x in detail["commands"]] == [
        ("start", {"routine": "classic", "profile": "sam"}),
        ("today", {"ended": "not_today"}),
    ]
    logged = caplog.text.lower()
    assert "fever" not in logged and "neck" not in logged
    assert last["today"] == {"asking": False, "answered": True, "questions": []}


@pytest.mark.parametrize("stop_sign", ["fever_or_unwell", "swollen_calf"])
async def test_a_stop_sign_ends_a_session_with_no_profile_too(spa: Api, stop_sign: str) -> None:
    await start(spa)
    r = await spa.client.post(f"{ROOM}/session/today", json={stop_sign: True})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_massage_today")
    assert spa.core.room("bedroom").session is None


async def test_after_the_massage_has_begun_the_answers_are_refused(spa: Api) -> None:
    c = spa.client
    await start(spa, profile="sam")
    await c.post(f"{ROOM}/session/next")
    shaped = live(spa).routine
    for answers in ({"sore": ["neck"]}, {"fever_or_unwell": True}):
        r = await c.post(f"{ROOM}/session/today", json=answers)
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "conflict"
        assert "the massage has begun" in error["message"]
        assert "effleurage" in error["message"]
    # Back in getting ready is not before the massage.
    await c.post(f"{ROOM}/session/previous")
    view = (await c.get(ROOM)).json()["session"]
    assert view["stage"]["name"] == "prepare" and view["today"]["asking"] is False
    r = await c.post(f"{ROOM}/session/today", json={"fever_or_unwell": True})
    assert r.status_code == 409 and "the massage has begun" in r.json()["error"]["message"]
    assert live(spa).routine == shaped and live(spa).status == "running"
    await stop(spa)

    # The quiet room has no massage, so nothing to ask; no session, nothing to answer.
    await start(spa, room_only=True)
    r = await c.post(f"{ROOM}/session/today", json={"sore": True})
    assert r.status_code == 409 and "quiet room" in r.json()["error"]["message"]
    await stop(spa)
    r = await c.post(f"{ROOM}/session/today", json={"sore": True})
    assert r.status_code == 409 and "no session" in r.json()["error"]["message"]


async def test_bad_answers_are_a_422_that_names_them(spa: Api) -> None:
    await start(spa)
    for body, named in (
        ({"sore": ["knee cap"]}, "is not a body area"),
        ({"fever": True}, "fever"),
        ({"painkillers_or_alcohol": "yes"}, "painkillers_or_alcohol"),
    ):
        r = await spa.client.post(f"{ROOM}/session/today", json=body)
        assert r.status_code == 422, r.text
        assert named in r.text
    assert live(spa).today_answered is False


async def test_the_answers_may_leave_less_than_the_minutes_asked_for(spa: Api) -> None:
    """Fitted to its longest, then every area is sore: what is left cannot fill the time,
    so it is fitted to the longest it can take now, and getting ready says so."""
    reach = (await spa.client.get("/api/v1/routines/classic/fit")).json()
    longest = reach["longest"]
    await start(spa, minutes=longest)
    # The areas the friction works are sore: the kneading and the friction are left out,
    # and only strokes on the sides are left (with every area sore nothing would be left,
    # and that is refused instead: test_shaping.py).
    friction = LIBRARY.routine("classic").stage("friction")
    sore = sorted({a for step in friction.guidance.steps for a in step.areas or ()})
    r = await spa.client.post(f"{ROOM}/session/today", json={"sore": sore})
    assert r.status_code == 200, r.text
    view = r.json()["session"]
    fitted = live(spa).fitted
    assert fitted is not None and fitted.asked == longest and fitted.minutes < longest
    assert view["minutes"] == fitted.minutes
    assert abs(view["total_duration"] - fitted.minutes * 60) <= 3
    assert len(view["stages"]) < len(LIBRARY.routine("classic").stages)
    first = view["stage"]["guidance"]["steps"][0]
    assert f"{fitted.minutes:g} minutes, not the {longest:g} asked for" in first
    # Answered again without the areas, it gets its time back.
    r = await spa.client.post(f"{ROOM}/session/today", json={"sore": False})
    again = live(spa).fitted
    assert again is not None and (again.minutes, again.asked) == (longest, None)


async def test_answered_survives_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="classic")})
    clock = FakeClock()
    async with Ambiance(settings, clock=clock, library=LIBRARY) as core:
        room = core.room("bedroom")
        room.start_spa()
        room.answer_today(DayCheck(sore=["neck"]))
        shaped = room.session.routine if room.session else None
    async with Ambiance(settings, clock=clock, library=LIBRARY) as core:
        session = core.room("bedroom").session
        assert session is not None and session.routine == shaped
        today = session.view().today
        assert today is not None and (today.asking, today.answered) == (True, True)
