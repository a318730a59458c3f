"""Taking turns: after one person's massage, "Your turn?" starts the other's, linked to
the first; feedback and learning stay per person."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

ROOM = "/api/v1/rooms/living"  # routine `timed`: a, b, c


async def people(c: httpx.AsyncClient) -> None:
    for name in ("sam", "alex"):
        assert (await c.post("/api/v1/profiles", json={"name": name})).status_code == 201


async def massage(c: httpx.AsyncClient, **body: object) -> str:
    started = await c.post(f"{ROOM}/spa", json=body)
    assert started.status_code == 201, started.text
    await c.delete(f"{ROOM}/spa")
    return str(started.json()["session"]["id"])


async def test_your_turn_starts_the_other_person_s_session_linked_to_the_first(
    api: Api,
) -> None:
    c = api.client
    await people(c)
    first = await massage(c, profile="sam")

    r = await c.post(f"{ROOM}/spa", json={"profile": "alex", "routine": "quick", "follows": first})
    assert r.status_code == 201, r.text
    turn = r.json()["session"]
    assert (turn["profile"], turn["routine"], turn["follows"]) == ("alex", "quick", first)
    # The room's last session (the first one) now says who came after it.
    assert r.json()["last_session"]["followed_by"] == turn["id"]
    commands = (await c.get(f"/api/v1/sessions/{turn['id']}")).json()["commands"]
    assert commands[0]["args"] == {"routine": "quick", "profile": "alex", "follows": first}
    await c.delete(f"{ROOM}/spa")

    # The history shows the two linked, both ways.
    history = (await c.get("/api/v1/sessions", params={"room": "living"})).json()
    assert [(s["id"], s["profile"], s["follows"], s["followed_by"]) for s in history] == [
        (turn["id"], "alex", first, None),
        (first, "sam", None, turn["id"]),
    ]
    detail = (await c.get(f"/api/v1/sessions/{first}")).json()
    assert (detail["follows"], detail["followed_by"]) == (None, turn["id"])

    # Feedback and learning stay per person: each session teaches its own profile, once.
    r = await c.post(
        f"/api/v1/sessions/{first}/feedback", json={"rating": 5, "pressure": {"a": "firmer"}}
    )
    assert r.json()["profile"]["name"] == "sam"
    r = await c.post(f"{ROOM}/feedback", json={"rating": 4, "pressure": {"prepare": "softer"}})
    assert r.status_code == 201, r.text
    assert (r.json()["session"], r.json()["profile"]["name"]) == (turn["id"], "alex")
    sam = (await c.get("/api/v1/profiles/sam")).json()
    alex = (await c.get("/api/v1/profiles/alex")).json()
    assert (sam["sessions"], sam["stage_pressure"]) == (1, {"a": "firm"})
    assert (alex["sessions"], alex["stage_pressure"]) == (1, {"prepare": "soft"})


async def test_a_turn_needs_an_ended_session_of_someone_else(api: Api) -> None:
    c = api.client
    await people(c)

    r = await c.post(f"{ROOM}/spa", json={"profile": "alex", "follows": "nosuchsession"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "session_not_found")
    assert "'nosuchsession'" in r.json()["error"]["message"]

    # Still going (in the other room): a turn comes after it.
    running = (await c.post("/api/v1/rooms/bedroom/spa", json={"profile": "sam"})).json()
    r = await c.post(f"{ROOM}/spa", json={"profile": "alex", "follows": running["session"]["id"]})
    assert r.status_code == 409
    assert "still running in 'bedroom'" in r.json()["error"]["message"]
    await c.delete("/api/v1/rooms/bedroom/spa")

    # The same person again is not a turn.
    first = await massage(c, profile="sam")
    r = await c.post(f"{ROOM}/spa", json={"profile": "sam", "follows": first})
    assert r.status_code == 409
    assert "was for 'sam' too" in r.json()["error"]["message"]
    nobody = await massage(c)
    r = await c.post(f"{ROOM}/spa", json={"follows": nobody})
    assert r.status_code == 409
    assert "without a profile too" in r.json()["error"]["message"]

    # One turn per session: a second phone tapping "Your turn?" later is told who went.
    turn = await massage(c, profile="alex", follows=first)
    r = await c.post(f"{ROOM}/spa", json={"profile": "alex", "follows": first})
    assert r.status_code == 409
    assert f"already followed by session {turn}" in r.json()["error"]["message"]
    # None of the refused ones started anything.
    assert (await c.get(ROOM)).json()["session"] is None
    assert len((await c.get("/api/v1/sessions", params={"room": "living"})).json()) == 3


async def test_a_turn_without_a_profile_after_someone_s_is_fine(api: Api) -> None:
    c = api.client
    await people(c)
    first = await massage(c, profile="sam")
    r = await c.post(f"{ROOM}/spa", json={"follows": first})
    assert r.status_code == 201, r.text
    assert (r.json()["session"]["profile"], r.json()["session"]["follows"]) == (None, first)
