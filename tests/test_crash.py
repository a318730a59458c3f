"""Nothing lost: a real service process killed with SIGKILL mid-session and started
again picks the session up — the right stage and time left, the snapshot of the lights
and the phones' do-not-disturb — and its end still puts the room back exactly. Killed
while the room was being put back, it finishes putting it back at the next start."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.infra.store import Store
from tests.hue_emulator import HueEmulator
from tests.mosquitto import Mosquitto, Subscriber
from tests.service_process import ServiceProcess, write

USER = "crashtest0123456789abcdef0123456789abcd"
ROOM = "/api/v1/rooms/bedroom"
DND = "ambiance/phones/sams-pixel/dnd"

ROUTINE = """
routines:
  long:
    restore_transition: 1
    stages:
      - {name: a, scene: one, duration: 600, guidance: {summary: first}}
      - {name: b, scene: two, duration: 600, guidance: {summary: second}}
      - {name: c, scene: three, duration: 600, guidance: {summary: third}}
scenes:
  one: {lights: {kelvin: 2700, brightness: 40, transition: 0}}
  two: {lights: {kelvin: 2200, brightness: 20, transition: 0}}
  three: {lights: {kelvin: 2000, brightness: 5, transition: 0}}
"""


@dataclass
class Rig:
    emu: HueEmulator
    broker: Mosquitto
    data: Path
    config: Path

    def service(self) -> ServiceProcess:
        return ServiceProcess("--config", str(self.config), "--data-dir", str(self.data))

    def lights(self) -> dict[str, dict[str, Any]]:
        return {i: {k: self.emu.state(i)[k] for k in ("on", "bri", "ct")} for i in "123"}


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed left", on=True, bri=200, ct=366)
    emu.add_light("2", "Bed right", on=True, bri=120, ct=250)
    emu.add_light("3", "Ceiling", on=False, bri=180, ct=300)
    emu.add_group("1", "Bedroom", ["1", "2", "3"])
    emu.start()  # its address (the port) goes into the config
    write(tmp_path / "scenes" / "long.yaml", ROUTINE)
    config = write(
        tmp_path / "ambiance.yaml",
        f"""
scenes: [{tmp_path / "scenes"}]
mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, reconnect_min: 0.05, reconnect_max: 0.5}}
devices: {{retry_initial: 0.05, retry_max: 0.2}}
rooms:
  bedroom:
    routine: long
    lights: {{backend: hue, bridge: "{emu.address}", group: Bedroom, username: {USER}}}
    phones: [{{name: sams-pixel, mode: total_silence}}]
""",
    )
    try:
        yield Rig(emu, mosquitto, tmp_path / "data", config)
    finally:
        emu.stop()


def active(rig: Rig) -> Any:
    with Store.in_dir(rig.data) as store:
        sessions = store.sessions.active()
        assert len(sessions) == 1
        return sessions[0], store.snapshots.for_session(sessions[0].id), store.dnd.states("bedroom")


def shift_back(rig: Rig, seconds: float) -> None:
    """Pretend the service was down `seconds` longer: move the session's times back."""
    db = sqlite3.connect(rig.data / "ambiance.db")
    with db:
        db.execute(
            "UPDATE sessions SET started_at = started_at - ?, "
            "stage_started_at = stage_started_at - ?, deadline = deadline - ?",
            (seconds, seconds, seconds),
        )
    db.close()


def start_session(rig: Rig, sub: Subscriber) -> tuple[ServiceProcess, str, dict[str, Any]]:
    before = rig.lights()
    service = rig.service()
    url = service.start()
    with httpx.Client(base_url=url, timeout=10) as client:
        body = client.post(f"{ROOM}/spa").json()
        assert body["lights"]["synced"], json.dumps(body, indent=1) + service.log()
        body = client.post(f"{ROOM}/session/next").json()
        assert body["session"]["stage"]["name"] == "b"
    sub.wait_for(DND, predicate=lambda m: json.loads(m.payload)["state"] == "on")
    assert rig.emu.state("1")["bri"] == 51  # scene "two": 20 %
    return service, body["session"]["id"], before


def test_killed_mid_stage_it_goes_on_where_it_was(rig: Rig) -> None:
    with Subscriber(rig.broker, DND) as sub:
        service, session_id, before = start_session(rig, sub)
        service.kill()

        # What the store kept through the kill.
        record, snapshots, dnd = active(rig)
        assert (record.id, record.status, record.index) == (session_id, "running", 1)
        assert record.deadline is not None
        assert {x["id"]: x["state"]["bri"] for x in snapshots["lights"]} == {
            "1": 200,
            "2": 120,
            "3": 180,
        }
        assert dnd["sams-pixel"]["state"] == "on"

        rig.emu.set_state("1", bri=77)  # someone touched a light while the service was down
        again = rig.service()
        url = again.start()
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                body = client.get(ROOM).json()
                assert body["session"]["id"] == session_id
                assert body["session"]["stage"]["name"] == "b"
                assert 500 < body["session"]["stage"]["remaining"] <= 600
                assert body["phones"][0]["dnd"] is True
                # The room is brought back to the stage's scene.
                waited = client.post(f"{ROOM}/session/extend", json={"seconds": 1}).json()
                assert waited["lights"]["synced"]
                assert rig.emu.state("1")["bri"] == 51
                # The end still restores the room exactly, and the phones come off DND.
                client.delete(f"{ROOM}/spa")
            sub.wait_for(DND, predicate=lambda m: json.loads(m.payload)["state"] == "off")
            # The light that was off fades out, then gets its saved state: two commands.
            assert rig.emu.wait_for("PUT", "/lights/3/state", count=2, timeout=10)
            assert rig.lights() == before
        finally:
            again.terminate()


def test_stages_that_ran_out_while_down_are_passed_over(rig: Rig) -> None:
    with Subscriber(rig.broker, DND) as sub:
        service, session_id, _ = start_session(rig, sub)
        service.kill()
        shift_back(rig, 650)  # stage b (600 s) ran out; c has run 50 s or so
        again = rig.service()
        url = again.start()
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                body = client.post(f"{ROOM}/session/extend", json={"seconds": 1}).json()
                assert body["session"]["id"] == session_id
                assert body["session"]["stage"]["name"] == "c"
                assert 450 < body["session"]["stage"]["remaining"] <= 551
                assert rig.emu.state("2")["bri"] == 13  # scene "three": 5 %
        finally:
            again.terminate()


def test_a_session_that_ended_while_down_is_ended_properly(rig: Rig) -> None:
    with Subscriber(rig.broker, DND) as sub:
        service, session_id, before = start_session(rig, sub)
        service.kill()
        shift_back(rig, 5000)  # long past the end of the routine
        again = rig.service()
        url = again.start()
        try:
            sub.wait_for(DND, predicate=lambda m: json.loads(m.payload)["state"] == "off")
            with httpx.Client(base_url=url, timeout=10) as client:
                assert client.get(ROOM).json()["session"] is None
                detail = client.get(f"/api/v1/sessions/{session_id}").json()
                assert detail["status"] == "finished"
            assert rig.emu.wait_for("PUT", "/lights/3/state", count=2, timeout=10)
            assert rig.lights() == before
        finally:
            again.terminate()


def test_killed_while_the_room_was_being_put_back_it_is_put_back_on_the_next_start(
    rig: Rig,
) -> None:
    with Subscriber(rig.broker, DND) as sub:
        service, session_id, before = start_session(rig, sub)
        rig.emu.stop()  # the bridge goes away: the end cannot put the lights back yet
        with httpx.Client(base_url=service.url, timeout=10) as client:
            body = client.delete(f"{ROOM}/spa").json()
            assert not body["lights"]["synced"]
        service.kill()
        with Store.in_dir(rig.data) as store:
            assert store.sessions.get(session_id).status == "stopped"  # type: ignore[union-attr]
            assert [p.device for p in store.snapshots.pending_restores()] == ["lights"]

        rig.emu.start()  # the same port again
        again = rig.service()
        again.start()
        try:
            # The light that was off fades out, then gets its saved state: two commands.
            assert rig.emu.wait_for("PUT", "/lights/3/state", count=2, timeout=10)
            assert rig.lights() == before
        finally:
            again.terminate()
        with Store.in_dir(rig.data) as store:
            assert store.snapshots.pending_restores() == []
