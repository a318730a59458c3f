"""Profiles, session history and feedback over the REST API."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

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
    assert (await c.put("/api/v1/profiles/sam", json={**SAM, "name": "alex"})).status_code == 422
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
    assert [x["action"] for x in detail["commands"]] == ["start", "stop"]
    assert detail["feedback"][0]["data"]["notes"] == "lovely"


async def test_bad_feedback(api: Api) -> None:
    c = api.client
    r = await c.post("/api/v1/sessions/nope/feedback", json={"rating": 3})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "session_not_found")
    r = await c.post("/api/v1/rooms/living/feedback", json={"rating": 3})
    assert r.status_code == 409  # no session yet
    await c.post("/api/v1/rooms/living/spa")
    await c.delete("/api/v1/rooms/living/spa")
    for body in ({"rating": 9}, {"rating": 3, "pressure": {"zzz": "firmer"}}, {"rating": True}):
        r = await c.post("/api/v1/rooms/living/feedback", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await c.post("/api/v1/rooms/living/feedback", json={"rating": 3})
    assert r.status_code == 201
    assert r.json()["profile"] is None  # no profile: kept in the history only
