"""The REST API end to end, on virtual lights and a fake clock."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.profiles import Profile
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import SessionRecord, Store
from ambiance.service import Ambiance
from tests.api.conftest import Api
from tests.helpers import make_library

pytestmark = pytest.mark.anyio

ROOM = "/api/v1/rooms/bedroom"


def lights(body: dict[str, Any]) -> list[tuple[bool, float, int]]:
    return [(x["on"], x["brightness"], x["kelvin"]) for x in body["lights"]["lights"]]


async def test_list_rooms(api: Api) -> None:
    r = await api.client.get("/api/v1/rooms")
    assert r.status_code == 200
    assert [room["name"] for room in r.json()] == ["bedroom", "living"]
    assert r.json()[0] == {
        "name": "bedroom",
        "title": "Bedroom",
        "routine": "quick",
        "status": "idle",
        "stage": None,
        "health": "ok",
    }


async def test_unknown_room_is_a_404_naming_it(api: Api) -> None:
    r = await api.client.get("/api/v1/rooms/kitchen")
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "room_not_found"
    assert "'kitchen'" in error["message"]
    assert "bedroom" in error["message"]
    r = await api.client.post("/api/v1/rooms/kitchen/spa")
    assert r.status_code == 404


async def test_spa_mode_walks_the_routine_and_restores_the_room(api: Api) -> None:
    before = lights((await api.client.get(ROOM)).json())

    r = await api.client.post(f"{ROOM}/spa")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["session"]["status"] == "running"
    assert body["session"]["stage"]["name"] == "prepare"
    assert body["session"]["stage"]["remaining"] is None  # untimed: waits for the giver
    assert body["scene"] == "warm"
    assert body["lights"]["synced"] is True
    assert set(lights(body)) == {(True, 40.2, 2703)}  # 2700 K is 370 mireds

    body = (await api.client.post(f"{ROOM}/session/next")).json()
    assert body["session"]["stage"]["name"] == "a"
    assert body["session"]["stage"]["remaining"] == 60
    assert set(lights(body)) == {(True, 20.1, 2198)}

    # The timer moves on by itself.
    mark = len(api.log.events)
    api.clock.advance(60)
    await api.log.wait_for(lambda e: e.kind == "stage.changed", start=mark)
    await api.core.room("bedroom").lights.wait_synced(5)
    body = (await api.client.get(ROOM)).json()
    assert body["session"]["stage"]["name"] == "b"
    assert set(lights(body)) == {(True, 5.1, 2000)}

    body = (await api.client.delete(f"{ROOM}/spa")).json()
    assert body["session"] is None
    assert body["last_session"]["status"] == "stopped"
    assert body["scene"] is None
    assert lights(body) == before


async def test_session_runs_to_the_end_by_itself(api: Api) -> None:
    before = lights((await api.client.get("/api/v1/rooms/living")).json())
    await api.client.post("/api/v1/rooms/living/spa")
    mark = len(api.log.events)
    api.clock.advance(60 + 120 + 30)
    ended = await api.log.wait_for(lambda e: e.kind == "session.ended", start=mark)
    assert ended.data["outcome"] == "finished"
    await api.core.room("living").lights.wait_synced(5)
    body = (await api.client.get("/api/v1/rooms/living")).json()
    assert body["session"] is None
    assert body["last_session"]["status"] == "finished"
    assert lights(body) == before


async def test_every_command(api: Api) -> None:
    client = api.client
    api.core.profiles.create(Profile(name="sam"))
    await client.post(f"{ROOM}/spa", json={"routine": "timed", "profile": "sam"})
    body = (await client.post(f"{ROOM}/session/pause")).json()
    assert body["session"]["status"] == "paused"
    r = await client.post(f"{ROOM}/session/pause")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    body = (await client.post(f"{ROOM}/session/resume")).json()
    assert body["session"]["status"] == "running"
    assert body["session"]["profile"] == "sam"
    body = (await client.post(f"{ROOM}/session/goto", json={"stage": "c"})).json()
    assert body["session"]["stage"]["name"] == "c"
    body = (await client.post(f"{ROOM}/session/previous")).json()
    assert body["session"]["stage"]["name"] == "b"
    body = (await client.post(f"{ROOM}/session/extend", json={"seconds": 30})).json()
    assert body["session"]["stage"]["remaining"] == 150
    body = (await client.put(f"{ROOM}/stage", json={"stage": "a", "remaining": 12})).json()
    assert body["session"]["stage"]["name"] == "a"
    assert body["session"]["stage"]["remaining"] == 12
    mark = len(api.log.events)
    api.clock.advance(12)
    changed = await api.log.wait_for(lambda e: e.kind == "stage.changed", start=mark)
    assert changed.data["stage"] == "b"
    body = (await client.post(f"{ROOM}/session/stop")).json()
    assert body["session"] is None
    r = await client.post(f"{ROOM}/session/next")
    assert r.status_code == 409
    assert "no session is running in 'bedroom'" in r.json()["error"]["message"]


async def test_toggle_pause_over_rest_as_over_mqtt(api: Api) -> None:
    r = await api.client.post(f"{ROOM}/session/toggle_pause")
    assert r.status_code == 409  # no session: nothing to pause
    await api.client.post(f"{ROOM}/spa", json={"routine": "timed"})
    body = (await api.client.post(f"{ROOM}/session/toggle_pause")).json()
    assert body["session"]["status"] == "paused"
    body = (await api.client.post(f"{ROOM}/session/toggle_pause")).json()
    assert body["session"]["status"] == "running"


async def test_start_twice_is_a_conflict(api: Api) -> None:
    assert (await api.client.post(f"{ROOM}/spa")).status_code == 201
    r = await api.client.post(f"{ROOM}/spa")
    assert r.status_code == 409
    assert "already running" in r.json()["error"]["message"]


@pytest.mark.parametrize("action", ["pause", "resume", "next", "previous", "stop"])
async def test_commands_without_a_session_are_409(api: Api, action: str) -> None:
    r = await api.client.post(f"{ROOM}/session/{action}")
    assert r.status_code == 409
    assert r.json()["error"]["message"].startswith("cannot ")


async def test_unknown_names_are_404s(api: Api) -> None:
    r = await api.client.post(f"{ROOM}/spa", json={"routine": "nope"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "routine_not_found"
    r = await api.client.post(f"{ROOM}/spa", json={"profile": "nobody"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "profile_not_found"
    assert "'nobody'" in r.json()["error"]["message"]
    await api.client.post(f"{ROOM}/spa")
    r = await api.client.post(f"{ROOM}/session/goto", json={"stage": "zzz"})
    assert r.status_code == 404
    assert "'zzz'" in r.json()["error"]["message"]
    r = await api.client.put(f"{ROOM}/stage", json={"stage": "zzz"})
    assert r.status_code == 404
    r = await api.client.post(f"{ROOM}/scene", json={"scene": "disco"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "scene_not_found"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/session/extend", {"seconds": 0}),
        ("post", "/session/extend", {"seconds": 99999}),
        ("post", "/session/extend", {"seconds": "soon"}),
        ("put", "/stage", {"stage": "a", "remaining": -3}),
        ("put", "/stage", {}),
        ("post", "/spa", {"profile": "Not A Name"}),
        ("post", "/spa", {"routine": "quick", "colour": "red"}),
        ("post", "/session/dance", None),
        ("post", "/scene", {"scene": 5}),
    ],
)
async def test_out_of_range_values_are_422s(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    await api.client.post(f"{ROOM}/spa", json={"routine": "timed"})
    r = await api.client.request(method.upper(), f"{ROOM}{path}", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
    assert error["detail"][0]["field"]


async def test_malformed_json_is_a_422(api: Api) -> None:
    r = await api.client.post(
        f"{ROOM}/spa", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"


async def test_extend_untimed_stage_is_a_409(api: Api) -> None:
    await api.client.post(f"{ROOM}/spa")
    r = await api.client.post(f"{ROOM}/session/extend", json={"seconds": 60})
    assert r.status_code == 409
    assert "untimed" in r.json()["error"]["message"]


async def test_apply_a_scene_without_a_routine(api: Api) -> None:
    r = await api.client.post(f"{ROOM}/scene", json={"scene": "dark"})
    assert r.status_code == 200
    body = r.json()
    assert body["scene"] == "dark"
    assert body["session"] is None
    assert set(lights(body)) == {(True, 5.1, 2000)}


async def test_unknown_endpoint_and_method_use_the_error_shape(api: Api) -> None:
    r = await api.client.get("/api/v1/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = await api.client.patch(f"{ROOM}/spa")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_room_state_reports_health(api: Api) -> None:
    body = (await api.client.get(ROOM)).json()
    assert body["health"]["status"] == "ok"
    assert body["health"]["devices"][0]["device"] == "lights"
    assert body["lights"]["backend"] == "virtual"
    assert [x["name"] for x in body["lights"]["lights"]] == [
        "ceiling",
        "bedside left",
        "bedside right",
        "floor lamp",
    ]


async def test_a_timers_stage_change_is_not_written_yet_history_and_a_restart_see_it(
    api: Api,
) -> None:
    """A timer's stage change follows from the stored deadline: the store is not written
    then, yet the history shows the stage the session is in, and a restart resumes it."""
    session_id = (await api.client.post("/api/v1/rooms/living/spa")).json()["session"]["id"]
    mark = len(api.log.events)
    api.clock.advance(60 + 10)  # stage a (60 s) ran out: b, with 110 s left
    await api.log.wait_for(lambda e: e.kind == "stage.changed", start=mark)

    stored = api.core.store.sessions.get(session_id)
    assert stored is not None
    assert (stored.index, stored.status) == (0, "running")  # not written: derived
    summary = (await api.client.get(f"/api/v1/sessions/{session_id}")).json()
    assert summary["stage"] == "b"
    listed = (await api.client.get("/api/v1/sessions", params={"room": "living"})).json()
    assert [s["stage"] for s in listed] == ["b"]

    # A second service on the same store (as after a crash) picks it up in stage b.
    again = Ambiance(api.core.settings, clock=api.clock, library=make_library())
    async with again:
        session = again.room("living").session
        assert session is not None and session.id == session_id
        assert session.stage.name == "b"
        assert session.stage_remaining(api.clock.now()) == 110


async def test_a_room_no_longer_configured_is_named_once_for_what_it_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store.in_dir(tmp_path) as store:
        store.sessions.save(
            SessionRecord(
                id="s1", room="attic", routine="quick", routine_data={}, profile=None,
                status="stopped", index=0, started_at=1.0, stage_started_at=1.0,
                deadline=None, paused_remaining=None, ended_at=2.0, updated_at=2.0,
            )
        )  # fmt: skip
        store.snapshots.save("s1", "lights", {"lights": []})
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="quick")})
    with caplog.at_level(logging.WARNING, logger="ambiance.service"):
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            assert core.store.snapshots.pending_restores() == []
    assert "'attic', no longer configured, was not put back" in caplog.text
