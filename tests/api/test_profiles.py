"""Profiles, session history and feedback over the REST API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.scenes import builtin_scenes_dir, load_library
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.api.conftest import Api
from tests.helpers import EventLog

pytestmark = pytest.mark.anyio

SAM = {
    "name": "sam",
    "display_name": "Sam",
    "pressure": "medium",
    "focus": ["shoulders"],
    "avoid": ["lower back"],
    "oil": "almond",
}


async def test_profile_crud(api: Api) -> None:
    c = api.client
    r = await c.post("/api/v1/profiles", json=SAM)
    assert r.status_code == 201, r.text
    assert r.json()["focus"] == ["shoulders"]
    assert (await c.post("/api/v1/profiles", json=SAM)).status_code == 409
    assert [p["name"] for p in (await c.get("/api/v1/profiles")).json()] == ["sam"]
    r = await c.patch("/api/v1/profiles/sam", json={"pressure": "firm", "warmth": "warmer"})
    assert (r.json()["pressure"], r.json()["warmth"], r.json()["oil"]) == (
        "firm",
        "warmer",
        "almond",
    )
    r = await c.put("/api/v1/profiles/sam", json={**SAM, "pressure": "soft"})
    assert r.json()["pressure"] == "soft"
    r = await c.put("/api/v1/profiles/sam", json={**SAM, "name": "alex"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
    assert "'alex'" in r.json()["error"]["message"]
    assert (await c.delete("/api/v1/profiles/sam")).status_code == 204
    r = await c.get("/api/v1/profiles/sam")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "profile_not_found")
    assert (await c.delete("/api/v1/profiles/sam")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Not OK"},
        {"name": "sam", "pressure": "crushing"},
        {"name": "sam", "focus": ["x" * 500]},
        {"name": "sam", "notes": "n" * 5000},
        {"name": "sam", "stage_minutes": {"petrissage": -3}},
        {"name": "sam", "colour": "blue"},
    ],
)
async def test_bad_profiles_are_422s(api: Api, body: dict[str, object]) -> None:
    r = await api.client.post("/api/v1/profiles", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


async def test_export_and_import(api: Api) -> None:
    c = api.client
    await c.post("/api/v1/profiles", json=SAM)
    exported = (await c.get("/api/v1/profiles/sam/export")).json()
    assert exported["format"] == "ambiance.profile/1"
    assert exported["profile"]["oil"] == "almond"
    assert (await c.post("/api/v1/profiles/import", json=exported)).status_code == 409
    await c.delete("/api/v1/profiles/sam")
    r = await c.post("/api/v1/profiles/import", json=exported)
    assert r.status_code == 201
    assert r.json() == exported["profile"]
    exported["profile"]["oil"] = "jojoba"
    r = await c.post("/api/v1/profiles/import?replace=true", json=exported)
    assert r.json()["oil"] == "jojoba"
    r = await c.post("/api/v1/profiles/import", json={"format": "other", "profile": SAM})
    assert r.status_code == 422


async def test_feedback_teaches_the_profile_and_shapes_the_next_session(api: Api) -> None:
    c = api.client
    await c.post("/api/v1/profiles", json=SAM)
    room = "/api/v1/rooms/living"  # routine `timed`: a, b, c
    started = (await c.post(f"{room}/spa", json={"profile": "sam"})).json()
    session_id = started["session"]["id"]
    guidance = started["session"]["stage"]["guidance"]
    assert "lower back" in (guidance["caution"] or "")

    r = await c.post(f"/api/v1/sessions/{session_id}/feedback", json={"rating": 5})
    assert r.status_code == 409  # still running
    await c.post(f"{room}/session/goto", json={"stage": "b"})  # feedback speaks of b
    await c.delete(f"{room}/spa")

    feedback = {"rating": 4, "pressure": {"b": "firmer"}, "favourite_stage": "b", "notes": "lovely"}
    r = await c.post(f"/api/v1/sessions/{session_id}/feedback", json=feedback)
    assert r.status_code == 201, r.text
    learned = r.json()["profile"]
    assert learned["stage_pressure"]["b"] == "firm"  # one step up from medium
    assert learned["last_feedback"] == {"b": "firmer"}
    assert learned["favourite_stage"] == "b"
    assert learned["sessions"] == 1

    # The next session says what was learned.
    again = (await c.post(f"{room}/spa", json={"profile": "sam"})).json()
    await c.post(f"{room}/session/goto", json={"stage": "b"})
    body = (await c.get(room)).json()
    text = str(body["session"]["stage"]["guidance"]).lower()
    assert "firm" in text
    assert "last time" in text
    # The favourite stage grew by 10 %: 120 s -> 132 s.
    assert body["session"]["stage"]["duration"] == pytest.approx(132)
    assert again["session"]["profile"] == "sam"

    history = (await c.get("/api/v1/sessions", params={"profile": "sam"})).json()
    assert [s["status"] for s in history] == ["running", "stopped"]
    detail = (await c.get(f"/api/v1/sessions/{session_id}")).json()
    assert [x["action"] for x in detail["commands"]] == ["start", "goto", "stop"]
    assert detail["feedback"][0]["data"]["notes"] == "lovely"


async def test_bad_feedback(api: Api) -> None:
    c = api.client
    r = await c.post("/api/v1/sessions/nope/feedback", json={"rating": 3})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "session_not_found")
    r = await c.post("/api/v1/rooms/living/feedback", json={"rating": 3})
    assert r.status_code == 409  # no session yet
    await c.post("/api/v1/rooms/living/spa")
    await c.delete("/api/v1/rooms/living/spa")
    for body in ({"rating": 9}, {"rating": True}):
        r = await c.post("/api/v1/rooms/living/feedback", json=body)
        assert r.status_code == 422, (body, r.text)
    # A stage the routine has not is a name that does not exist, as for goto: a 404.
    r = await c.post(
        "/api/v1/rooms/living/feedback", json={"rating": 3, "pressure": {"zzz": "firmer"}}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "stage_not_found"), r.text
    assert "'zzz'" in r.json()["error"]["message"]
    assert "a, b, c" in r.json()["error"]["message"]
    r = await c.post("/api/v1/rooms/living/feedback", json={"rating": 3})
    assert r.status_code == 201
    assert r.json()["profile"] is None  # no profile: kept in the history only


async def test_a_patch_null_puts_a_field_back_to_its_default(api: Api) -> None:
    c = api.client
    await c.post("/api/v1/profiles", json={**SAM, "favourite_stage": "b", "pressure": "firm"})
    changes = {"display_name": None, "favourite_stage": None, "pressure": None, "focus": None}
    r = await c.patch("/api/v1/profiles/sam", json=changes)
    assert r.status_code == 200, r.text
    profile = r.json()
    assert (profile["display_name"], profile["favourite_stage"]) == ("", None)
    assert (profile["pressure"], profile["focus"]) == ("medium", [])
    assert (profile["oil"], profile["avoid"]) == ("almond", ["lower_back"])  # not sent: kept
    assert (await c.get("/api/v1/profiles/sam")).json() == profile


@pytest.mark.parametrize(
    "changes",
    [
        {"stage_minutes": {"Petrissage!": 5}},
        {"stage_pressure": {"": "firm"}},
        {"focus": ["  "]},
        {"display_name": "x" * 100 + " "},
    ],
)
async def test_a_patch_the_schema_refuses_is_refused_as_a_bad_request(
    api: Api, changes: dict[str, object]
) -> None:
    await api.client.post("/api/v1/profiles", json=SAM)
    r = await api.client.patch("/api/v1/profiles/sam", json=changes)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), r.text
    assert r.json()["error"]["detail"][0]["field"].startswith("body.")


async def test_the_patch_body_has_each_field_as_a_profile_has_it_or_null(api: Api) -> None:
    """So what the PATCH schema allows is what the change accepts (it once had a looser
    copy of the fields: keys of any shape, a null that was then refused)."""
    document = (await api.client.get("/openapi.json")).json()
    models = document["components"]["schemas"]
    # The profile as sent (its answer also has `warnings`, worked out from it).
    profile = models["Profile-Input"]["properties"]
    changes = models["ProfileChanges"]["properties"]
    assert "warnings" in models["Profile-Output"]["properties"]
    assert set(changes) == set(profile) - {"name", "last_feedback", "sessions"}
    for field, schema in changes.items():
        assert {"type": "null"} in schema["anyOf"], field
        assert _not_null(schema) == _not_null(profile[field]), field
    # Per-stage maps take stage names only: no other key gets past the schema.
    assert profile["stage_minutes"]["additionalProperties"] is False


def _not_null(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A property's schema but its null alternative, title, default and description."""
    shape = {k: v for k, v in schema.items() if k not in ("title", "default", "description")}
    return [a for a in shape.get("anyOf", [shape]) if a != {"type": "null"}]


async def test_an_import_takes_any_feedback_history_without_replaying_it(api: Api) -> None:
    """The history is kept as JSON of any shape: one nested 900 deep (within what the
    parser reads) was dumped again and failed as a 500."""
    deep: object = "end"
    for _ in range(900):
        deep = [deep]
    document = {"format": "ambiance.profile/1", "profile": SAM, "feedback": [{"data": deep}]}
    r = await api.client.post("/api/v1/profiles/import", json=document)
    assert r.status_code == 201, r.text
    assert r.json()["oil"] == "almond"


async def test_a_profile_s_session_count_is_bounded(api: Api) -> None:
    r = await api.client.post("/api/v1/profiles", json={**SAM, "sessions": 10**30})
    assert (r.status_code, r.json()["error"]["detail"][0]["field"]) == (422, "body.sessions")


# --- body areas and health -----------------------------------------------------------------


@pytest.fixture
async def spa(tmp_path: Path) -> AsyncIterator[Api]:
    """A core with the built-in routines (classic by default, and the quiet room)."""
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="classic")})
    clock = FakeClock()
    core = Ambiance(settings, clock=clock, library=load_library([builtin_scenes_dir()]))
    log = EventLog(core.bus)
    async with core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as client:
            yield Api(client, core, clock, log)


async def test_the_health_shape_works_over_http_and_goes_with_the_profile(api: Api) -> None:
    c = api.client
    r = await c.post("/api/v1/profiles", json={"name": "sam", "health": {"pregnant": True}})
    assert r.status_code == 201, r.text
    assert r.json()["health"]["pregnant"] is True
    r = await c.patch("/api/v1/profiles/sam", json={"health": {"nut_allergy": True}})
    assert (r.json()["health"]["pregnant"], r.json()["health"]["nut_allergy"]) == (True, True)
    r = await c.patch("/api/v1/profiles/sam", json={"health": {"pregnant": None}})
    assert (r.json()["health"]["pregnant"], r.json()["health"]["nut_allergy"]) == (None, True)
    r = await c.patch("/api/v1/profiles/sam", json={"health": {"pregnant": "yes"}})
    assert (r.status_code, r.json()["error"]["detail"][0]["field"]) == (
        422,
        "body.health.pregnant",
    )
    r = await c.put(
        "/api/v1/profiles/sam",
        json={"name": "sam", "health": {"pregnant": True, "varicose_veins": ["calves"]}},
    )
    assert r.json()["health"]["varicose_veins"] == ["calves"]
    exported = (await c.get("/api/v1/profiles/sam/export")).json()
    assert exported["profile"]["health"]["pregnant"] is True
    assert (await c.delete("/api/v1/profiles/sam")).status_code == 204
    assert api.core.store.profiles.get("sam") is None  # deleted with the profile
    r = await c.post("/api/v1/profiles/import", json=exported)
    assert r.status_code == 201, r.text
    assert r.json()["health"] == exported["profile"]["health"]


async def test_areas_by_id_or_plain_name_and_anything_else_is_refused(api: Api) -> None:
    c = api.client
    body = {"name": "sam", "focus": ["Upper Back", "neck"], "avoid": ["lower-back"]}
    r = await c.post("/api/v1/profiles", json={**body, "area_pressure": {"shoulders": "firm"}})
    assert r.status_code == 201, r.text
    assert (r.json()["focus"], r.json()["avoid"]) == (["upper_back", "neck"], ["lower_back"])
    assert r.json()["warnings"] == []
    r = await c.patch("/api/v1/profiles/sam", json={"avoid": ["my bad knee"]})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "'my bad knee' is not a body area" in message
    assert "lower_back (lower back)" in message
    r = await c.patch("/api/v1/profiles/sam", json={"area_pressure": {"elbows": "soft"}})
    assert r.status_code == 422


async def test_a_stored_free_text_profile_shows_its_warnings_and_a_put_back_is_fine(
    api: Api,
) -> None:
    api.core.store.profiles.put("jo", {"name": "jo", "avoid": ["Lower Back", "my bad knee"]})
    r = await api.client.get("/api/v1/profiles/jo")
    assert r.status_code == 200, r.text
    profile = r.json()
    assert profile["avoid"] == ["lower_back"]
    assert profile["unmatched_areas"]["avoid"] == ["my bad knee"]
    assert len(profile["warnings"]) == 1 and "'my bad knee'" in profile["warnings"][0]
    # A client that sends the body it got back (warnings and all) is not refused.
    r = await api.client.put("/api/v1/profiles/jo", json=profile)
    assert r.status_code == 200, r.text
    old_export = {"format": "ambiance.profile/1", "profile": {"name": "al", "focus": ["legs"]}}
    r = await api.client.post("/api/v1/profiles/import", json=old_export)
    assert (r.status_code, r.json()["focus"]) == (201, ["thighs", "calves"])


async def test_a_pregnant_receiver_gets_a_side_lying_session_over_http(spa: Api) -> None:
    c = spa.client
    await c.post(
        "/api/v1/profiles",
        json={
            "name": "sam",
            "display_name": "Sam",
            "avoid": ["lower back"],
            "health": {"pregnant": True},
        },
    )
    started = await c.post("/api/v1/rooms/bedroom/spa", json={"profile": "sam"})
    assert started.status_code == 201, started.text
    stage = started.json()["session"]["stage"]
    assert stage["position"] == "side_lying"
    guidance = stage["guidance"]
    assert all(isinstance(text, str) for text in guidance["steps"])
    assert [d["text"] for d in guidance["step_details"]] == guidance["steps"]
    assert any(text.startswith("Help Sam lie on their side") for text in guidance["steps"])
    assert not any("face down" in text and "never" not in text for text in guidance["steps"])
    await c.post("/api/v1/rooms/bedroom/session/next")
    effleurage = (await c.get("/api/v1/rooms/bedroom")).json()["session"]["stage"]
    assert effleurage["position"] == "side_lying"
    for detail in effleurage["guidance"]["step_details"]:
        assert "lower_back" not in detail["areas"]


async def test_a_stop_sign_refuses_the_massage_and_offers_the_quiet_room(
    spa: Api, caplog: pytest.LogCaptureFixture
) -> None:
    c = spa.client
    room = "/api/v1/rooms/bedroom"
    with caplog.at_level(logging.DEBUG):
        r = await c.post(f"{room}/spa", json={"today": {"swollen_calf": True}})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "no_massage_today"
        assert "see a doctor" in error["message"]
        assert [s["answer"] for s in error["detail"]["stop_signs"]] == ["swollen_calf"]
        assert error["detail"]["room_only"] == {"room_only": True}
        assert (await c.get(room)).json()["session"] is None  # no routine started
        r = await c.post(f"{room}/spa", json={"room_only": True, "today": {"swollen_calf": True}})
        assert r.status_code == 201, r.text
        session = r.json()["session"]
        assert session["routine"] == "quiet-room"
        assert session["stage"]["guidance"]["step_details"][0]["areas"] == []
        await c.delete(f"{room}/spa")
        r = await c.post(f"{room}/spa", json={"today": {"painkillers_or_alcohol": True}})
        assert r.status_code == 201, r.text
    logged = caplog.text.lower()
    assert "swollen" not in logged and "painkillers" not in logged
    history = (await c.get("/api/v1/sessions")).json()
    detail = (await c.get(f"/api/v1/sessions/{history[0]['id']}")).json()
    assert "painkillers" not in str(detail["commands"])  # today's answers are kept nowhere
