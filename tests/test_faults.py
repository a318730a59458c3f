"""Faults for real: the Hue bridge away for 10 s, Mosquitto and MPD killed and restarted,
a real service process sent SIGTERM — the session goes on and nothing is lost — and the
bridge protected from a flood of taps."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.events import Event
from ambiance.devices.distractions import Zigbee2MqttDistraction
from ambiance.devices.lights.base import bri_to_percent, percent_to_bri
from ambiance.devices.lights.hue.registration import HueDistraction, HueLightsConfig
from ambiance.devices.lights.zigbee2mqtt import Zigbee2MqttLightsConfig
from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.devices.phones import PhoneConfig
from ambiance.infra.clock import FakeClock
from ambiance.infra.mqtt import MAX_PAYLOAD, Message
from ambiance.infra.store import Store
from ambiance.service import Ambiance
from api.app import create_app
from tests.fake_zigbee2mqtt import FakeLight, FakeZigbee2Mqtt
from tests.helpers import EventLog, make_library
from tests.hue_emulator import HueEmulator
from tests.mosquitto import Mosquitto, Received, Subscriber, async_read_retained
from tests.mpd_server import MpdServer
from tests.mqtt_fixtures import mqtt_settings
from tests.music.test_service_mpd import files
from tests.music.test_service_mpd import library as music_library
from tests.service_process import ServiceProcess, write
from tests.test_discovery import ENTITIES

pytestmark = pytest.mark.anyio

USER = "faults0123456789abcdef0123456789abcdef01"
ROOM = "/api/v1/rooms/bedroom"
GROUP_ACTION = "/groups/1/action"
OUTAGE = 10.0  # seconds, as the spec asks


def emulator() -> HueEmulator:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed left", on=True, bri=200, ct=366)
    emu.add_light("2", "Bed right", on=True, bri=120, ct=250)
    emu.add_light("3", "Ceiling", on=False, bri=180, ct=300)
    emu.add_group("1", "Bedroom", ["1", "2", "3"])
    return emu


def health(device: str, available: bool) -> Callable[[Event], bool]:
    return lambda e: (
        e.kind == "device.health"
        and e.data["device"] == device
        and e.data["available"] is available
    )


@dataclass
class HueRig:
    client: httpx.AsyncClient
    core: Ambiance
    clock: FakeClock
    log: EventLog
    emu: HueEmulator
    loop_errors: list[dict[str, Any]]


@pytest.fixture
async def hue(tmp_path: Path) -> AsyncIterator[HueRig]:
    # The defaults that matter here: the coordinator's backoff (0.25 s .. 1 s), the one
    # retry layer; only the REST command's wait for the lights is shortened.
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    emu = emulator()
    with emu:
        settings = Settings(
            data_dir=tmp_path,
            rooms={
                "bedroom": RoomConfig(
                    routine="timed",
                    lights=HueLightsConfig.model_validate(
                        {
                            "backend": "hue",
                            "bridge": emu.address,
                            "group": "Bedroom",
                            "username": USER,
                            "timeout": 1.0,
                        }
                    ),
                )
            },
            devices=DevicesConfig(settle_timeout=0.5),
        )
        clock = FakeClock()
        core = Ambiance(settings, clock=clock, library=make_library())
        log = EventLog(core.bus)
        try:
            async with core:
                assert await core.room("bedroom").lights.wait_synced(5)
                transport = httpx.ASGITransport(app=create_app(core))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    yield HueRig(client, core, clock, log, emu, loop_errors)
        finally:
            loop.set_exception_handler(previous)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith(("ambiance", "api")) and (r.exc_info or r.levelno >= logging.ERROR)
    ]


async def test_the_bridge_away_for_10_s_mid_stage(
    hue: HueRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    s = hue
    assert (await s.client.post(f"{ROOM}/spa")).json()["lights"]["synced"]
    assert (await s.client.post(f"{ROOM}/session/next")).json()["session"]["stage"]["name"] == "b"
    assert await s.core.room("bedroom").lights.wait_synced(5)

    mark = len(s.log.events)
    s.emu.stop()
    down_since = time.monotonic()
    # The session goes on: a stage change during the outage is accepted.
    r = await s.client.post(f"{ROOM}/session/next")
    assert r.status_code == 200
    assert r.json()["session"]["stage"]["name"] == "c"
    assert r.json()["lights"]["synced"] is False
    await s.log.wait_for(health("lights", False), start=mark)
    assert (await s.client.get("/api/v1/health")).json()["status"] == "degraded"
    room = (await s.client.get(ROOM)).json()
    assert room["health"]["status"] == "degraded"
    assert "cannot reach the Hue bridge" in room["health"]["devices"][0]["error"]
    # And another one: the newest stage is what the room must show when the bridge is back.
    r = await s.client.post(f"{ROOM}/session/previous")
    assert r.json()["session"]["stage"]["name"] == "b"
    target = s.core.room("bedroom").lights.desired
    assert target is not None

    # The outage itself is the one deliberate wait: a bridge that is away for 10 s (the
    # coordinator's backoff reaches its 1 s ceiling and stays there), against the real
    # bridge client and emulator, whose pace is the event loop's own time.
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_since)))
    assert time.monotonic() - down_since >= OUTAGE
    assert (await s.client.get("/api/v1/health")).json()["status"] == "degraded"

    seen = s.emu.count("PUT", GROUP_ACTION)
    mark = len(s.log.events)
    back = time.monotonic()
    s.emu.start()
    assert await anyio.to_thread.run_sync(
        lambda: s.emu.wait_for("PUT", GROUP_ACTION, count=seen + 1, timeout=5)
    )
    action = [r for r in s.emu.requests if r.resource == GROUP_ACTION][seen]
    converged = action.at - back
    print(f"converged {converged:.3f} s after the bridge came back")
    assert converged < 2.0
    assert action.body["on"] is True
    assert action.body["bri"] == percent_to_bri(target.brightness)  # stage b's scene
    await s.log.wait_for(health("lights", True), start=mark)
    assert await s.core.room("bedroom").lights.wait_synced(5)
    assert (await s.client.get("/api/v1/health")).json()["status"] == "ok"
    assert s.emu.state("1")["bri"] == percent_to_bri(target.brightness)

    assert not tracebacks(caplog), [r.getMessage() for r in tracebacks(caplog)]
    assert s.loop_errors == []


async def test_a_bridge_restart_with_its_lights_reset_is_undone_mid_session(
    tmp_path: Path,
) -> None:
    """The bridge restarts mid-session and its lights come back at their power-on defaults
    (on, full brightness), the TV strip with them: once it answers again the room's lights
    are back at the stage's scene and the TV strip is off again, and the view says so."""
    emu = emulator()
    emu.add_light("7", "TV strip", on=True, bri=254, ct=200)
    with emu:
        settings = Settings(
            data_dir=tmp_path,
            rooms={
                "bedroom": RoomConfig(
                    routine="timed",
                    lights=HueLightsConfig(
                        backend="hue", bridge=emu.address, group="Bedroom", username=USER
                    ),
                    distractions=[HueDistraction(type="hue", light="TV strip")],
                )
            },
            # A short poll, so the outage is seen soon (the default is 30 s).
            devices=DevicesConfig(retry_initial=0.02, retry_max=0.1, poll_interval=0.05),
        )
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            log = EventLog(core.bus)
            room = core.room("bedroom")
            room.start_spa()
            assert await room.settle(5)
            target = room.lights.desired
            assert target is not None and target.on
            assert emu.state("7")["on"] is False

            mark = len(log.events)
            emu.stop()
            await log.wait_for(health("distractions", False), start=mark)
            await log.wait_for(health("lights", False), start=mark)
            emu.start(reset_lights=True)  # the same port; every light on at bri 254
            assert emu.state("7")["on"] is True and emu.state("1")["bri"] == 254

            assert await room.settle(5)
            assert not room.degraded
            assert emu.state("7")["on"] is False
            for light in "123":
                state = emu.state(light)
                assert (state["on"], state["bri"]) == (True, percent_to_bri(target.brightness))
            view = room.view().model_dump(mode="json")
            assert view["distractions"]["devices"] == [
                {"name": "TV strip", "kind": "hue", "on": False}
            ]
            assert view["distractions"]["synced"] and view["lights"]["synced"]
            shown = bri_to_percent(percent_to_bri(target.brightness))
            assert {x["brightness"] for x in view["lights"]["lights"]} == {shown}

            room.stop_session()  # and the end still puts back the room as it was before
            assert await room.settle(5)
            assert emu.state("7")["on"] is True
            assert emu.state("1")["bri"] == 200


async def test_twenty_quick_taps_reach_the_bridge_as_few_spaced_group_commands(
    hue: HueRig,
) -> None:
    s = hue
    s.core.room("bedroom").start_spa()
    assert await s.core.room("bedroom").lights.wait_synced(5)
    s.emu.clear_requests()
    room = s.core.room("bedroom")
    for _ in range(20):  # next, next, ... through the routine and round again
        if room.session is None:
            room.start_spa()
        else:
            room.next()
        await asyncio.sleep(0)  # let the coordinator run between taps, as requests would
    assert await room.lights.wait_synced(10)
    times = [r.at for r in s.emu.requests if r.method == "PUT" and r.resource == GROUP_ACTION]
    assert 1 <= len(times) < 20 // 2, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 1.0 for g in gaps), gaps


# --- Mosquitto killed -----------------------------------------------------------------


async def test_mosquitto_killed_mid_session_nothing_published_meanwhile_is_lost(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={
            "bedroom": RoomConfig(
                routine="quick", phones=[PhoneConfig(name="sams-pixel", mode="total_silence")]
            )
        },
        devices=DevicesConfig(retry_initial=0.05, retry_max=0.2),
    )
    dnd = "ambiance/phones/sams-pixel/dnd"
    state = "ambiance/bedroom/state"
    with Subscriber(mosquitto, "ambiance/#") as sub:
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            log = EventLog(core.bus)
            room = core.room("bedroom")
            room.start_spa()
            await sub.async_wait_for(
                dnd, predicate=lambda m: json.loads(m.payload)["state"] == "on"
            )
            await sub.async_wait_for(state, predicate=lambda m: b'"prepare"' in m.payload)

            mosquitto.kill()
            await log.wait_for(health("mqtt", False), timeout=10)
            room.next()  # a state message (stage a)
            room.stop_session()  # DND off and a state message (idle)
            mark = len(sub.messages)
            mosquitto.start()  # same port; a fresh broker that kept nothing
            off = await sub.async_wait_for(
                dnd, predicate=lambda m: json.loads(m.payload)["state"] == "off", timeout=10
            )
            assert off.qos == 1
            await sub.async_wait_for(
                state, predicate=lambda m: json.loads(m.payload)["status"] == "idle", timeout=10
            )
            assert sub.messages[mark:]  # they arrived after the restart
            retained = await async_read_retained(mosquitto, "ambiance/#")
            assert json.loads(retained[dnd])["state"] == "off"
            assert json.loads(retained[state])["status"] == "idle"
            assert not room.degraded


def dnd_is(state: str) -> Callable[[Received], bool]:
    return lambda m: bool(m.payload) and json.loads(m.payload)["state"] == state


def status_is(status: str) -> Callable[[Received], bool]:
    return lambda m: bool(m.payload) and json.loads(m.payload)["status"] == status


async def test_mosquitto_killed_and_a_fresh_one_gets_every_retained_message_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Killed (-9) mid-session, nothing changing meanwhile, and a fresh broker without
    persistence on the same port: a subscriber that comes then still finds the phones on
    do-not-disturb, the room's state, `online` and every Home Assistant config. After the
    session the same again finds DND off: nothing stale comes back."""
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={"bedroom": RoomConfig(routine="quick", phones=[PhoneConfig(name="sams-pixel")])},
        devices=DevicesConfig(retry_initial=0.05, retry_max=0.2),
    )
    dnd, state = "ambiance/phones/sams-pixel/dnd", "ambiance/bedroom/state"
    ours = ["ambiance/#", "homeassistant/#"]

    async def restart(log: EventLog) -> None:
        mark = len(log.events)
        mosquitto.kill()
        await log.wait_for(health("mqtt", False), start=mark, timeout=10)
        mark = len(log.events)
        mosquitto.start()  # same port; a fresh broker that knows nothing
        await log.wait_for(health("mqtt", True), start=mark, timeout=10)

    async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
        log = EventLog(core.bus)
        room = core.room("bedroom")
        configs = sorted(core.discovery.configs())
        assert len(configs) == len(ENTITIES)  # every entity of the room
        with Subscriber(mosquitto, *ours) as before:
            room.start_spa()
            await before.async_wait_for(dnd, predicate=dnd_is("on"))
            await before.async_wait_for(state, predicate=status_is("running"))
            for topic in configs:
                await before.async_wait_for(topic)

        await restart(log)
        with Subscriber(mosquitto, *ours) as fresh:
            await fresh.async_wait_for(dnd, predicate=dnd_is("on"), timeout=10)
            await fresh.async_wait_for(state, predicate=status_is("running"), timeout=10)
            await fresh.async_wait_for("ambiance/status", "online", timeout=10)
            for topic in configs:
                config = await fresh.async_wait_for(topic, timeout=10)
                assert json.loads(config.payload) == core.discovery.configs()[topic]
        retained = await async_read_retained(mosquitto, "ambiance/#")
        assert json.loads(retained[dnd])["state"] == "on"
        assert [phone.dnd for phone in room.view().phones] == [True]  # what the API says
        assert set(await async_read_retained(mosquitto, "homeassistant/#")) == set(configs)

        with Subscriber(mosquitto, dnd) as phone:
            room.stop_session()
            await phone.async_wait_for(dnd, predicate=dnd_is("off"))
        await restart(log)
        with Subscriber(mosquitto, *ours) as fresh:
            await fresh.async_wait_for(dnd, predicate=dnd_is("off"), timeout=10)
            await fresh.async_wait_for(state, predicate=status_is("idle"), timeout=10)
        assert fresh.matching(dnd, None) and not [m for m in fresh.matching(dnd) if dnd_is("on")(m)]
        retained = await async_read_retained(mosquitto, "ambiance/#")
        assert json.loads(retained[dnd])["state"] == "off"
        assert json.loads(retained[state])["status"] == "idle"
        assert retained["ambiance/status"] == b"online"


# --- what we read from MQTT, deeply nested ------------------------------------------------


class Heard:
    """A handler of the test's beside a device's on the same topic filter: handlers of one
    filter run in the order they came, so what this one has heard, the device has too."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.payloads.append(message.payload)
        self._changed.set()

    async def wait_for(self, check: Callable[[bytes], bool], timeout: float = 5.0) -> None:
        async def scan() -> None:
            while not any(check(p) for p in self.payloads):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(scan(), timeout)


async def test_deeply_nested_json_on_every_topic_we_read_is_reported_never_a_traceback(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Zigbee2MQTT's light state, availability and bridge state, a plug's state and a
    command, each ten thousand objects deep (past the JSON decoder's recursion limit, under
    the payload limit): the command is answered on the room's error topic, each device
    topic is one short warning, nothing is logged as an error, and the next valid message
    is taken as usual (the command is four thousand lists deep, to stay under its limit)."""
    caplog.set_level(logging.INFO)
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert len(deep) <= MAX_PAYLOAD
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={
            "bedroom": RoomConfig(
                routine="quick",
                lights=Zigbee2MqttLightsConfig(backend="zigbee2mqtt", lights=["bulb"]),
                distractions=[Zigbee2MqttDistraction(type="zigbee2mqtt", device="tv_plug")],
            )
        },
        devices=DevicesConfig(retry_initial=0.05, retry_max=0.2),
    )
    devices = {
        "zigbee2mqtt/bulb": "the message",
        "zigbee2mqtt/bulb/availability": "the message",
        "zigbee2mqtt/bridge/state": "the message",
        "zigbee2mqtt/tv_plug": "the state",
    }
    with (
        FakeZigbee2Mqtt(mosquitto, [FakeLight("bulb")]) as z2m,
        Subscriber(mosquitto, "ambiance/#") as sub,
    ):
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            assert await core.mqtt.wait_ready(5)
            heard = {topic: Heard() for topic in devices}
            for topic, handler in heard.items():
                core.mqtt.subscribe(topic, handler)
            assert await core.mqtt.wait_ready(5)
            mark = len(caplog.records)
            for topic in devices:
                sub.publish(topic, deep)
            sub.publish("ambiance/bedroom/cmd", b"[" * 4000 + b"]" * 4000)  # under 8 KiB
            error = await sub.async_wait_for("ambiance/bedroom/error")
            assert json.loads(error.payload)["error"] == {
                "code": "invalid_input",
                "message": "command is nested too deeply",
            }
            # Then valid messages: each device takes its own.
            z2m.report("bulb")
            sub.publish("zigbee2mqtt/bulb/availability", '{"state": "online"}')
            sub.publish("zigbee2mqtt/bridge/state", '{"state": "online"}')
            sub.publish("zigbee2mqtt/tv_plug", '{"state": "ON"}')
            for handler in heard.values():
                await handler.wait_for(lambda p: p.startswith(b"{") and p != deep)

            records = [r for r in caplog.records[mark:] if r.name.startswith("ambiance")]
            assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []
            assert [r.getMessage() for r in records if r.exc_info] == []
            warnings = sorted(r.getMessage() for r in records if r.levelno == logging.WARNING)
            assert warnings == sorted(
                [f"mqtt: {topic}: {what} is nested too deeply" for topic, what in devices.items()]
                + ["bedroom: MQTT command not done (invalid_input): command is nested too deeply"]
            )
            room = core.room("bedroom")
            assert room.distractions is not None
            assert await room.distractions.backend.switches[0].is_on() is True
            room.start_spa()
            assert await room.lights.wait_synced(5)


# --- MPD killed -------------------------------------------------------------------------


@pytest.fixture
def mpd_server(tmp_path: Path) -> Iterator[MpdServer]:
    with MpdServer(tmp_path / "mpd") as server:
        yield server


async def test_mpd_killed_mid_session_plays_the_stage_music_again(
    mpd_server: MpdServer, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rooms={
            "bedroom": RoomConfig(
                routine="fast",
                music=MpdMusicConfig(
                    backend="mpd", host="127.0.0.1", port=mpd_server.port, cue=None, fade_step=0.05
                ),
            )
        },
        devices=DevicesConfig(retry_initial=0.05, retry_max=0.2, poll_interval=0.3),
    )
    clock = FakeClock()
    async with Ambiance(settings, clock=clock, library=music_library()) as core:
        log = EventLog(core.bus)
        room = core.room("bedroom")
        assert room.music is not None
        room.start_spa()
        clock.advance(30)  # stage two: "flowing" at 45 %
        assert await room.settle(10)
        assert mpd_server.queue() == files("flowing")

        mpd_server.kill()
        await log.wait_for(health("music", False), timeout=10)
        mark = len(log.events)
        mpd_server.start()  # same port, an empty queue, stopped
        await log.wait_for(health("music", True), start=mark, timeout=10)
        assert await room.settle(10)
        await room.music.backend.wait_faded()  # type: ignore[attr-defined]
        status = mpd_server.status()
        assert mpd_server.queue() == files("flowing")
        assert status["state"] == "play"
        assert int(status["volume"]) == 45


# --- SIGTERM to a real service --------------------------------------------------------

ROUTINE = """
routines:
  long:
    stages:
      - {name: a, scene: one, duration: 600, guidance: {summary: first}}
      - {name: b, scene: two, duration: 600, guidance: {summary: second}}
scenes:
  one: {lights: {kelvin: 2700, brightness: 40, transition: 0}}
  two: {lights: {kelvin: 2200, brightness: 20, transition: 0}}
"""


def test_sigterm_mid_session_exits_cleanly_and_the_session_goes_on(tmp_path: Path) -> None:
    emu = emulator()
    with emu:
        write(tmp_path / "scenes" / "long.yaml", ROUTINE)
        config = write(
            tmp_path / "ambiance.yaml",
            f"""
scenes: [{tmp_path / "scenes"}]
rooms:
  bedroom:
    routine: long
    lights: {{backend: hue, bridge: "{emu.address}", group: Bedroom, username: {USER}}}
""",
        )
        data = tmp_path / "data"

        def service() -> ServiceProcess:
            return ServiceProcess("--config", str(config), "--data-dir", str(data))

        first = service()
        url = first.start()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post(f"{ROOM}/spa").json()["lights"]["synced"]
            body = client.post(f"{ROOM}/session/next").json()
            assert body["session"]["stage"]["name"] == "b" and body["lights"]["synced"]
            session_id = body["session"]["id"]
        assert emu.state("1")["bri"] == 51
        emu.clear_requests()

        began = time.monotonic()
        code = first.terminate()
        took = time.monotonic() - began
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal it caught:
        # the process ends as killed by SIGTERM (-15), not with an error status.
        assert code == -signal.SIGTERM, first.log()
        assert took < 5.0
        assert "Traceback" not in first.log(), first.log()
        # Left resumable: the room stays in spa mode (no restore) and the store has it.
        assert emu.count("PUT") == 0
        assert emu.state("1")["bri"] == 51
        with Store.in_dir(data) as store:
            [record] = store.sessions.active()
        assert (record.id, record.status, record.index) == (session_id, "running", 1)

        again = service()
        url = again.start()
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                room = client.get(ROOM).json()
                assert room["session"]["id"] == session_id
                assert room["session"]["stage"]["name"] == "b"
                assert room["session"]["status"] == "running"
        finally:
            assert again.terminate() == -signal.SIGTERM
        assert "Traceback" not in again.log(), again.log()
