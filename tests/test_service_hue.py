"""Spa mode end to end on a Hue room: the REST API -> the engine -> phue over real HTTP
-> the bridge emulator, with the bridge's requests counted."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.room import Room
from ambiance.devices.lights.hue.registration import HueLightsConfig
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import Store
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import EventLog, make_library
from tests.hue_emulator import HueEmulator

pytestmark = pytest.mark.anyio

USER = "ambiance0123456789abcdef0123456789abcdef"
ROOM = "/api/v1/rooms/bedroom"
GROUP_ACTION = "/groups/1/action"


def bedroom_emulator() -> HueEmulator:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed left", ct_min=153, ct_max=454, on=True, bri=200, ct=366)
    emu.add_light("2", "Bed right", ct_min=153, ct_max=500, on=True, bri=120, ct=250)
    emu.add_light("3", "Ceiling", on=False, bri=180, ct=300)
    emu.add_light("4", "Lamp", on=True, bri=90, colormode="xy", xy=(0.3127, 0.329))
    emu.add_group("1", "Bedroom", ["1", "2", "3", "4"])
    return emu


def exact(emu: HueEmulator) -> dict[str, dict[str, Any]]:
    """Each light's on, bri and colour in its colour mode (a light in xy mode ignores ct)."""
    out = {}
    for i in ("1", "2", "3", "4"):
        state = emu.state(i)
        mode = state["colormode"]
        out[i] = {"on": state["on"], "bri": state["bri"], "mode": mode, mode: state[mode]}
    return out


@dataclass
class Setup:
    client: httpx.AsyncClient
    core: Ambiance
    clock: FakeClock
    log: EventLog
    emu: HueEmulator


def hue_settings(tmp_path: Path, address: str, username: str | None = USER) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rooms={
            "bedroom": RoomConfig(
                routine="timed",
                lights=HueLightsConfig(
                    backend="hue",
                    bridge=address,
                    group="Bedroom",
                    username=username,
                    timeout=1.0,
                    retries=0,
                ),
            )
        },
        devices=DevicesConfig(
            retry_initial=0.02, retry_max=0.1, poll_interval=600, settle_timeout=0.2
        ),
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    emu = bedroom_emulator()
    with emu:
        clock = FakeClock()
        core = Ambiance(hue_settings(tmp_path, emu.address), clock=clock, library=make_library())
        log = EventLog(core.bus)
        async with core:
            await core.room("bedroom").lights.wait_synced(5)
            transport = httpx.ASGITransport(app=create_app(core))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield Setup(client, core, clock, log, emu)


async def advance_to_next_stage(s: Setup, seconds: float) -> None:
    mark = len(s.log.events)
    s.clock.advance(seconds)
    await s.log.wait_for(lambda e: e.kind in ("stage.changed", "session.ended"), start=mark)
    assert await s.core.room("bedroom").lights.wait_synced(5)


async def test_one_group_command_per_stage_and_an_exact_restore(setup: Setup) -> None:
    s = setup
    before = exact(s.emu)
    s.emu.clear_requests()

    r = await s.client.post(f"{ROOM}/spa")
    assert r.status_code == 201
    assert r.json()["lights"]["synced"]
    assert s.emu.count("PUT", GROUP_ACTION) == 1
    assert [x.path for x in s.emu.requests if x.method == "PUT"] == [f"/api/{USER}{GROUP_ACTION}"]
    action = next(x.body for x in s.emu.requests if x.method == "PUT")
    # Scene "dim": 2200 K, 20 %, 2 s -> ct 455 mireds (within the group's 153-500), bri 51.
    assert action == {"on": True, "bri": 51, "ct": 455, "transitiontime": 20}
    assert s.emu.state("1")["ct"] == 454  # the bridge clamped it into that light's range

    await advance_to_next_stage(s, 60)  # -> b
    assert s.emu.count("PUT", GROUP_ACTION) == 2
    await advance_to_next_stage(s, 120)  # -> c
    assert s.emu.count("PUT", GROUP_ACTION) == 3
    assert s.emu.count("PUT", "/lights/") == 0  # no per-light commands during the session

    await advance_to_next_stage(s, 30)  # the end: restore
    assert s.emu.count("PUT", GROUP_ACTION) == 3
    assert exact(s.emu) == before
    # Lights that were on fade back with the routine's transition (1 s); the one that
    # was off is switched off at once after its fade, with its saved bri and ct.
    assert s.emu.last_transitiontime("1") == 10
    assert s.emu.last_transitiontime("3") == 0
    room = (await s.client.get(ROOM)).json()
    assert room["session"] is None
    assert room["last_session"]["status"] == "finished"


async def test_quick_taps_coalesce_into_few_group_commands(setup: Setup) -> None:
    s = setup
    await s.client.post(f"{ROOM}/spa")
    s.emu.clear_requests()
    room = s.core.room("bedroom")
    for _ in range(5):  # five "next" taps between two turns of the event loop
        room.previous() if room.session and room.session.index == 2 else room.next()
    assert await room.lights.wait_synced(5)
    assert s.emu.count("PUT", GROUP_ACTION) == 1


async def test_an_unreachable_bridge_degrades_the_room_and_it_recovers(setup: Setup) -> None:
    s = setup
    await s.client.post(f"{ROOM}/spa")
    s.emu.stop()
    mark = len(s.log.events)
    body = (await s.client.post(f"{ROOM}/session/next")).json()  # answers despite the bridge
    assert body["session"]["stage"]["name"] == "b"
    await s.log.wait_for(
        lambda e: e.kind == "device.health" and not e.data["available"], start=mark
    )
    room = (await s.client.get(ROOM)).json()
    assert room["health"]["status"] == "degraded"
    assert "cannot reach the Hue bridge" in room["health"]["devices"][0]["error"]
    assert not room["lights"]["synced"]
    assert (await s.client.get("/api/v1/health")).json()["status"] == "degraded"
    # The session goes on while the bridge is away.
    await s.client.post(f"{ROOM}/session/next")

    s.emu.start()  # the same port again
    await s.log.wait_for(lambda e: e.kind == "device.health" and e.data["available"], start=mark)
    assert await s.core.room("bedroom").lights.wait_synced(5)
    # Scene "warm" of stage c: 2700 K, 40 % -> bri 102, ct 370.
    assert {(s.emu.state(i)["on"], s.emu.state(i)["bri"]) for i in "1234"} == {(True, 102)}
    assert s.emu.state("2")["ct"] == 370
    room = (await s.client.get(ROOM)).json()
    assert room["health"]["status"] == "ok"


async def test_a_bridge_down_at_start_gets_the_snapshot_when_it_answers(tmp_path: Path) -> None:
    emu = bedroom_emulator()
    emu.start()
    address = emu.address
    before = exact(emu)
    emu.stop()
    clock = FakeClock()
    core = Ambiance(hue_settings(tmp_path, address), clock=clock, library=make_library())
    log = EventLog(core.bus)
    try:
        async with core:
            room = core.room("bedroom")
            await log.wait_for(lambda e: e.kind == "device.health")
            assert room.degraded
            room.start_spa()
            room.next()
            emu.start()
            assert await room.lights.wait_synced(5)
            assert not room.degraded
            room.stop_session()
            assert await room.lights.wait_synced(5)
            assert exact(emu) == before
    finally:
        emu.stop()


@contextmanager
def bridge_across_restarts(tmp_path: Path) -> Iterator[tuple[HueEmulator, Any, Settings]]:
    """The bedroom's bridge, its lights as they are now, and settings for several runs of
    the service (which stops without waiting long for a bridge that is away)."""
    emu = bedroom_emulator()
    emu.start()
    try:
        settings = hue_settings(tmp_path, emu.address)
        settings.devices.shutdown_timeout = 0.2
        yield emu, exact(emu), settings
    finally:
        emu.stop()


async def spa_then_the_bridge_goes(core: Ambiance, emu: HueEmulator) -> Room:
    room = core.room("bedroom")
    room.start_spa()
    assert await room.lights.wait_synced(5)
    emu.stop()
    return room


async def test_a_restore_cut_short_by_a_stop_is_done_at_the_next_start(tmp_path: Path) -> None:
    """The bridge is away when the session ends and when the service stops: the room is
    put back at the next start, once the bridge answers."""
    with bridge_across_restarts(tmp_path) as (emu, before, settings):
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            room = await spa_then_the_bridge_goes(core, emu)
            room.stop_session()
            assert not await room.lights.wait_synced(0.3)  # cannot put it back now
        with Store.in_dir(tmp_path) as store:
            assert [p.device for p in store.snapshots.pending_restores()] == ["lights"]
        emu.start()
        again = Ambiance(settings, clock=FakeClock(), library=make_library())
        async with again:
            assert await again.room("bedroom").lights.wait_synced(5)
            assert exact(emu) == before
            assert again.store.snapshots.pending_restores() == []


async def test_a_restore_still_pending_is_carried_into_the_next_session_and_a_restart(
    tmp_path: Path,
) -> None:
    """A new session starts before the last one's restore reached the bridge; the service
    then restarts. The end of the new session still puts the room back as it was before
    the first one."""
    with bridge_across_restarts(tmp_path) as (emu, before, settings):
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            room = await spa_then_the_bridge_goes(core, emu)
            room.stop_session()
            second = room.start_spa()  # the lights still look like the first session's
        emu.start()
        again = Ambiance(settings, clock=FakeClock(), library=make_library())
        async with again:
            room = again.room("bedroom")
            assert room.session is not None and room.session.id == second.id
            assert await room.lights.wait_synced(5)
            assert exact(emu) != before
            room.stop_session()
            assert await room.lights.wait_synced(5)
            assert exact(emu) == before


async def test_an_unpaired_bridge_says_how_to_pair(tmp_path: Path) -> None:
    with bedroom_emulator() as emu:
        core = Ambiance(hue_settings(tmp_path, emu.address, username=None), library=make_library())
        log = EventLog(core.bus)
        async with core:
            event = await log.wait_for(lambda e: e.kind == "device.health")
            assert "ambiance pair" in event.data["error"]
            assert emu.count() == 0  # nothing sent without a username


async def test_an_unknown_group_is_named(tmp_path: Path) -> None:
    with bedroom_emulator() as emu:
        settings = hue_settings(tmp_path, emu.address)
        lights = settings.rooms["bedroom"].lights
        assert isinstance(lights, HueLightsConfig)
        lights.group = "Attic"
        core = Ambiance(settings, library=make_library())
        log = EventLog(core.bus)
        async with core:
            event = await log.wait_for(lambda e: e.kind == "device.health")
            assert "'Attic'" in event.data["error"]
            assert "'Bedroom'" in event.data["error"]


def test_pair_from_the_command_line_then_serve_with_the_stored_username(
    tmp_path: Path,
) -> None:
    with bedroom_emulator() as emu:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ambiance",
                "pair",
                "--bridge",
                emu.address,
                "--data-dir",
                str(tmp_path),
                "--timeout",
                "20",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "AMBIANCE_CONFIG": ""},
        )
        # Press the button only after the bridge said "not pressed" twice (error 101).
        presser = threading.Thread(
            target=lambda: (
                emu.wait_for("POST", "/api", count=2, timeout=20) and emu.press_link_button()
            )
        )
        presser.start()
        out, _ = process.communicate(timeout=30)
        presser.join()
        assert process.returncode == 0, out
        assert "Press the round link button" in out
        assert "Paired." in out
        stored = (tmp_path / "hue.json").read_text()
        new_users = emu.users - {USER}
        assert len(new_users) == 1
        assert new_users.pop() in stored
        assert (tmp_path / "hue.json").stat().st_mode & 0o777 == 0o600


def test_pair_times_out_with_a_clear_message(tmp_path: Path) -> None:
    with bedroom_emulator() as emu:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ambiance",
                "pair",
                "--bridge",
                emu.address,
                "--data-dir",
                str(tmp_path),
                "--timeout",
                "1.5",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "AMBIANCE_CONFIG": ""},
        )
        assert result.returncode == 1
        assert "link button" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "hue.json").exists()


async def test_stopping_the_service_right_after_the_end_still_restores(tmp_path: Path) -> None:
    with bedroom_emulator() as emu:
        before = exact(emu)
        core = Ambiance(
            hue_settings(tmp_path, emu.address), clock=FakeClock(), library=make_library()
        )
        async with core:
            room = core.room("bedroom")
            room.start_spa()
            assert await room.settle(5)
            room.stop_session()  # and the service stops at once
        assert exact(emu) == before
