"""Fitting to the time you have over the REST API, with the built-in routines: spa mode
with `minutes`, what a routine can take (GET /routines/{name}/fit), and the 422s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.fitting import MAX_MINUTES, reach
from ambiance.core.scenes import builtin_scenes_dir, load_library
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app

pytestmark = pytest.mark.anyio

LIBRARY = load_library([builtin_scenes_dir()])
ROUTINES = sorted(LIBRARY.routines)
ROOM = "/api/v1/rooms/bedroom"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="classic")})
    async with Ambiance(settings, clock=FakeClock()) as core:  # the built-in routines
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as c:
            yield c


async def test_spa_mode_fitted_to_twenty_minutes_shows_its_lengths_and_total(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{ROOM}/spa", json={"routine": "classic", "minutes": 20})
    assert r.status_code == 201, r.text
    session = r.json()["session"]
    assert session["minutes"] == 20
    assert session["total_duration"] == 20 * 60
    assert session["total_remaining"] == 20 * 60  # getting ready is untimed
    durations = dict(zip(session["stages"], session["durations"], strict=True))
    assert durations["prepare"] is None
    assert sum(d for d in durations.values() if d is not None) == 20 * 60
    own = {s.name: s.duration for s in LIBRARY.routine("classic").stages}
    assert durations["petrissage"] < own["petrissage"]  # the middle was shortened
    # The stages run for their fitted lengths.
    r = await client.post(f"{ROOM}/session/next")
    stage = r.json()["session"]["stage"]
    assert (stage["name"], stage["duration"]) == ("effleurage", durations["effleurage"])
    # The session history keeps what was asked.
    history = (await client.get("/api/v1/sessions", params={"room": "bedroom"})).json()
    detail = (await client.get(f"/api/v1/sessions/{history[0]['id']}")).json()
    assert detail["commands"][0]["args"]["minutes"] == 20


async def test_spa_mode_without_minutes_runs_the_routine_as_written(
    client: httpx.AsyncClient,
) -> None:
    session = (await client.post(f"{ROOM}/spa")).json()["session"]
    assert session["minutes"] is None
    classic = LIBRARY.routine("classic")
    assert session["total_duration"] == classic.total_duration
    assert session["durations"] == [s.duration for s in classic.stages]


@pytest.mark.parametrize("name", ROUTINES)
async def test_a_length_a_routine_cannot_take_is_a_422_naming_the_shortest(
    client: httpx.AsyncClient, name: str
) -> None:
    found = reach(LIBRARY.routine(name))
    too_short = max(1.0, found.shortest - 1)
    r = await client.post(f"{ROOM}/spa", json={"routine": name, "minutes": too_short})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert f"the shortest possible is {found.shortest:g} minutes" in error["message"]
    assert error["detail"]["shortest"] == found.shortest
    assert error["detail"]["longest"] == found.longest
    assert (await client.get(ROOM)).json()["session"] is None  # nothing started
    # Too long: past what the routine can take (or past 90 minutes, the schema's bound).
    if found.longest < MAX_MINUTES:
        r = await client.post(f"{ROOM}/spa", json={"routine": name, "minutes": MAX_MINUTES})
        assert r.status_code == 422, r.text
        assert f"the longest possible is {found.longest:g} minutes" in r.json()["error"]["message"]
    # The edges themselves start.
    for minutes in (found.shortest, found.longest):
        r = await client.post(f"{ROOM}/spa", json={"routine": name, "minutes": minutes})
        assert r.status_code == 201, r.text
        assert abs(r.json()["session"]["total_duration"] - minutes * 60) <= 3
        await client.delete(f"{ROOM}/spa")


@pytest.mark.parametrize("minutes", [0, 0.5, 90.5, 1000, "twenty", None, True])
async def test_minutes_out_of_the_schemas_bounds_are_422s(
    client: httpx.AsyncClient, minutes: object
) -> None:
    r = await client.post(f"{ROOM}/spa", json={"routine": "classic", "minutes": minutes})
    if minutes is None:  # null is "its own length"
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert "minutes" in r.json()["error"]["message"]


async def test_the_schema_bounds_minutes_as_the_server_does(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    body = schema["components"]["schemas"]["SpaRequest"]["properties"]["minutes"]
    number = next(s for s in body["anyOf"] if s.get("type") == "number")
    assert (number["minimum"], number["maximum"]) == (1, MAX_MINUTES)
    fit = schema["paths"]["/api/v1/routines/{name}/fit"]["get"]
    (query,) = (p for p in fit["parameters"] if p["name"] == "minutes")
    number = next(s for s in query["schema"]["anyOf"] if s.get("type") == "number")
    assert (number["minimum"], number["maximum"]) == (1, MAX_MINUTES)
    assert {"200", "404", "422"} <= set(fit["responses"])


@pytest.mark.parametrize("name", ROUTINES)
async def test_the_app_can_ask_what_a_routine_can_take(
    client: httpx.AsyncClient, name: str
) -> None:
    routine = LIBRARY.routine(name)
    found = reach(routine)
    r = await client.get(f"/api/v1/routines/{name}/fit")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["shortest"], body["longest"], body["own"]) == (
        found.shortest,
        found.longest,
        found.own,
    )
    assert body["minutes"] is None
    assert body["total"] == found.own
    assert [s["duration"] for s in body["stages"]] == [s.duration for s in routine.stages]
    # And what a length would give, stage by stage.
    middle = round((found.shortest + found.longest) / 2)
    body = (await client.get(f"/api/v1/routines/{name}/fit", params={"minutes": middle})).json()
    assert body["minutes"] == middle
    assert sum(s["duration"] or 0 for s in body["stages"]) == middle * 60
    assert [s["name"] for s in body["stages"]] == [s.name for s in routine.stages]
    r = await client.get(f"/api/v1/routines/{name}/fit", params={"minutes": 1})
    if found.shortest > 1:
        assert r.status_code == 422
        assert (
            f"the shortest possible is {found.shortest:g} minutes" in r.json()["error"]["message"]
        )


async def test_fitting_an_unknown_routine_is_a_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/routines/nope/fit", params={"minutes": 20})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "routine_not_found")


async def test_learning_from_a_fitted_session_is_about_the_persons_own_lengths(
    client: httpx.AsyncClient,
) -> None:
    """A favourite stage grows by 10 % of the person's length, not of the few minutes it
    had in a session fitted to a short evening (which would shorten it next time)."""
    await client.post("/api/v1/profiles", json={"name": "sam"})
    started = (await client.post(f"{ROOM}/spa", json={"profile": "sam", "minutes": 15})).json()[
        "session"
    ]
    durations = dict(zip(started["stages"], started["durations"], strict=True))
    assert durations["petrissage"] < 10 * 60
    # The kneading was done (feedback is learnt only on the stages reached), then the end.
    r = await client.post(f"{ROOM}/session/goto", json={"stage": "petrissage"})
    assert r.status_code == 200, r.text
    await client.delete(f"{ROOM}/spa")
    r = await client.post(
        f"/api/v1/sessions/{started['id']}/feedback",
        json={"rating": 5, "favourite_stage": "petrissage"},
    )
    assert r.status_code == 201, r.text
    own = LIBRARY.routine("classic").stage("petrissage").duration
    assert own is not None
    assert r.json()["profile"]["stage_minutes"]["petrissage"] == round(own / 60 * 1.1, 2)
    # The next full-length session gives them more kneading, not less.
    again = (await client.post(f"{ROOM}/spa", json={"profile": "sam"})).json()["session"]
    lengths = dict(zip(again["stages"], again["durations"], strict=True))
    assert lengths["petrissage"] > own
