"""Distractions on a Hue bridge (a TV light strip, a blinking indicator) and on MQTT (a
Zigbee2MQTT plug): switched off for the session, kept off while it runs (a switch that is
on again is switched off again), only those that were on switched back on after it, and
shown as they really are."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings, load_settings
from ambiance.core.events import Event, EventBus
from ambiance.core.room import Room
from ambiance.devices.distractions import (
    HueSwitch,
    MqttSwitch,
    TasmotaDistraction,
    Zigbee2MqttDistraction,
    as_mqtt,
)
from ambiance.devices.lights.hue import HueBridge
from ambiance.devices.lights.hue.registration import HueDistraction, HueLightsConfig
from ambiance.errors import ConfigError
from ambiance.infra.clock import FakeClock, SystemClock
from ambiance.infra.mqtt import MqttConnection
from ambiance.service import Ambiance
from tests.fake_zigbee2mqtt import FakeLight, FakeZigbee2Mqtt
from tests.helpers import EventLog, make_library
from tests.hue_emulator import HueEmulator
from tests.mosquitto import Mosquitto, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

USER = "distractions0123456789abcdef0123456789ab"


def emulator() -> HueEmulator:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed", on=True, bri=200, ct=366)
    emu.add_light("7", "TV strip", on=True, bri=254, ct=200)
    emu.add_light("8", "Router LED", on=False, bri=10, ct=200)
    emu.add_group("1", "Bedroom", ["1"])
    return emu


def settings(tmp_path: Path, emu: HueEmulator, *lights: str, poll: float = 30) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rooms={
            "bedroom": RoomConfig(
                routine="quick",
                lights=HueLightsConfig(
                    backend="hue", bridge=emu.address, group="Bedroom", username=USER
                ),
                distractions=[HueDistraction(type="hue", light=light) for light in lights],
            )
        },
        devices=DevicesConfig(
            retry_initial=0.02, retry_max=0.1, shutdown_timeout=0.2, poll_interval=poll
        ),
    )


async def test_hue_distractions_off_then_only_those_back_on(tmp_path: Path) -> None:
    with emulator() as emu:
        core = Ambiance(
            settings(tmp_path, emu, "TV strip", "8"), clock=FakeClock(), library=make_library()
        )
        async with core:
            room = core.room("bedroom")
            assert room.distractions is not None
            room.start_spa()
            assert await room.settle(5)
            assert emu.state("7")["on"] is False
            assert emu.state("8")["on"] is False
            assert emu.count("PUT", "/lights/8/state") == 0  # already off: left alone
            view = room.view().model_dump(mode="json")["distractions"]
            assert view["off"] is True
            room.stop_session()
            assert await room.settle(5)
            assert emu.state("7")["on"] is True
            assert emu.state("8")["on"] is False
            assert emu.count("PUT", "/lights/8/state") == 0


async def test_a_distraction_that_is_not_there_degrades_the_room(tmp_path: Path) -> None:
    with emulator() as emu:
        core = Ambiance(
            settings(tmp_path, emu, "Lava lamp"), clock=FakeClock(), library=make_library()
        )
        log = EventLog(core.bus)
        async with core:
            room = core.room("bedroom")
            room.start_spa()
            event = await log.wait_for(
                lambda e: e.kind == "device.health" and e.data["device"] == "distractions"
            )
            assert "'Lava lamp'" in event.data["error"]
            assert "TV strip" in event.data["error"]
            assert room.degraded
            # The lights are not held up by it.
            assert await room.lights.wait_synced(5)


def tv_strip(room: Room) -> dict[str, Any]:
    """The TV strip as the room's view shows it, and whether the view says synced."""
    view = room.view().model_dump(mode="json")["distractions"]
    [device] = [d for d in view["devices"] if d["name"] == "TV strip"]
    return {"on": device["on"], "synced": view["synced"], "off": view["off"]}


def health(available: bool, device: str = "distractions") -> Callable[[Event], bool]:
    return lambda e: (
        e.kind == "device.health"
        and e.data["device"] == device
        and e.data["available"] is available
    )


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[tuple[Room, HueEmulator, EventLog]]:
    """A session running with the TV strip switched off, polled every 50 ms."""
    with emulator() as emu:
        core = Ambiance(
            settings(tmp_path, emu, "TV strip", poll=0.05),
            clock=FakeClock(),
            library=make_library(),
        )
        log = EventLog(core.bus)
        async with core:
            room = core.room("bedroom")
            room.start_spa()
            assert await room.settle(5)
            assert emu.state("7")["on"] is False
            assert tv_strip(room) == {"on": False, "synced": True, "off": True}
            yield room, emu, log


async def test_a_distraction_on_again_mid_session_is_switched_off_again(
    session: tuple[Room, HueEmulator, EventLog],
) -> None:
    """Switched on between two polls (by hand, or by a bridge that restarted unseen): the
    next poll sees it and switches it off again."""
    room, emu, _ = session
    puts = emu.count("PUT", "/lights/7/state")
    emu.set_state("7", on=True)
    assert await anyio.to_thread.run_sync(
        lambda: emu.wait_for("PUT", "/lights/7/state", count=puts + 1)
    )
    assert await room.settle(5)
    assert emu.state("7")["on"] is False
    assert tv_strip(room) == {"on": False, "synced": True, "off": True}
    assert not room.degraded


async def test_a_distraction_that_cannot_be_read_is_shown_unknown(
    session: tuple[Room, HueEmulator, EventLog],
) -> None:
    room, emu, log = session
    mark = len(log.events)
    emu.stop()
    await log.wait_for(health(False), start=mark)
    # The room's lights, on the same bridge, find it away too (at their own poll): waited
    # for, so that they do not find it after it is back and leave the room degraded.
    await log.wait_for(health(False, "lights"), start=mark)
    # Not what we last told it (off): the bridge is away, so nobody knows.
    assert tv_strip(room) == {"on": None, "synced": False, "off": True}
    assert room.degraded

    emu.start(reset_lights=True)  # back, with the TV strip on
    assert await room.settle(5)
    assert emu.state("7")["on"] is False
    assert tv_strip(room) == {"on": False, "synced": True, "off": True}
    assert not room.degraded


async def test_a_distraction_that_cannot_be_switched_off_shows_its_real_state(
    session: tuple[Room, HueEmulator, EventLog],
) -> None:
    room, emu, log = session
    mark = len(log.events)
    emu.fail_next(10_000, 901, path_contains="/lights/7/state")  # it refuses every command
    emu.set_state("7", on=True)
    event = await log.wait_for(health(False), start=mark)
    assert "Internal error" in event.data["error"]
    # What it really is, not what we asked of it: on, and not in sync.
    assert tv_strip(room) == {"on": True, "synced": False, "off": True}
    assert room.view().health.status == "degraded"
    assert emu.state("7")["on"] is True


# --- MQTT switches ------------------------------------------------------------------------


async def test_a_zigbee2mqtt_plug_that_says_on_mid_session_is_switched_off_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={
            "bedroom": RoomConfig(
                routine="quick",
                distractions=[Zigbee2MqttDistraction(type="zigbee2mqtt", device="tv_plug")],
            )
        },
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.1, poll_interval=0.05),
    )
    with FakeZigbee2Mqtt(mosquitto, [FakeLight("tv_plug")]) as z2m:
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            room = core.room("bedroom")
            room.start_spa()
            assert await room.settle(5)
            assert z2m.light("tv_plug").state == "OFF"
            assert [c.payload for c in z2m.sets("tv_plug")] == [{"state": "OFF"}]

            z2m.change("tv_plug", state="ON")  # its own button: it says ON
            await z2m.async_wait_for(lambda: len(z2m.sets("tv_plug")) == 2, what="an OFF again")
            assert z2m.sets("tv_plug")[-1].payload == {"state": "OFF"}
            assert await room.settle(5)
            assert z2m.light("tv_plug").state == "OFF"
            view = room.view().model_dump(mode="json")["distractions"]
            assert view["devices"] == [{"name": "tv_plug", "kind": "mqtt", "on": False}]
            assert view["synced"] and not room.degraded

            room.stop_session()
            assert await room.settle(5)
            assert z2m.light("tv_plug").state == "ON"


async def test_a_switch_state_that_is_not_valid_is_said_once_and_not_taken(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
    plug = MqttSwitch(
        connection, as_mqtt(Zigbee2MqttDistraction(type="zigbee2mqtt", device="tv_plug"))
    )
    fan = MqttSwitch(connection, as_mqtt(TasmotaDistraction(type="tasmota", device="fan")))
    async with connection:
        assert await connection.wait_connected(5)
        await plug.start()
        await fan.start()
        assert await connection.wait_ready(5)
        with Subscriber(mosquitto, "zigbee2mqtt/tv_plug", "stat/fan/POWER") as other:
            for bad in ({"state": 5}, {"state": "TOGGLE"}, {"state": True}, [1], "x" * 500):
                other.publish("zigbee2mqtt/tv_plug", json.dumps(bad))
            other.publish("zigbee2mqtt/tv_plug", json.dumps({"linkquality": 30}))  # no state
            other.publish("zigbee2mqtt/tv_plug", json.dumps({"state": "OFF"}))
            other.publish("stat/fan/POWER", "MAYBE")
            other.publish("stat/fan/POWER", "MAYBE")
            other.publish("stat/fan/POWER", "ON")
        # Each one's first valid state comes last on its topic: once it is taken, all the
        # others before it were seen (and none of them was taken).
        assert await connection.clock.wait(plug._heard, 5) and plug.state is False
        assert await connection.clock.wait(fan._heard, 5) and fan.state is True
        await plug.stop()
        await fan.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    plug_says = [w for w in warnings if "tv_plug sent state" in w]
    assert len(plug_says) == 1, warnings  # once per device and field, for all four
    assert "5" in plug_says[0] and "neither 'ON' nor 'OFF'" in plug_says[0]
    assert len([w for w in warnings if "fan sent state 'MAYBE'" in w]) == 1
    assert all(len(w) < 300 for w in warnings)  # a long value is cut short


def test_mqtt_devices_and_phones_need_a_broker(tmp_path: Path) -> None:
    config = tmp_path / "ambiance.yaml"
    config.write_text(
        "rooms:\n"
        "  bedroom:\n"
        "    phones: [{name: sams-pixel}]\n"
        "    distractions:\n"
        "      - {type: tasmota, device: tv}\n"
        "      - {type: hue, light: TV strip}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config, data_dir=tmp_path)
    message = str(info.value)
    assert (
        "rooms.bedroom: phones, MQTT distractions and MQTT music need a broker: set mqtt.host"
        in message
    )
    assert "rooms.bedroom.distractions.1.bridge: required" in message


async def test_a_hue_switch_whose_on_is_not_valid_is_unknown(tmp_path: Path) -> None:
    with emulator() as emu:
        emu.set_state("7", on="yes")
        bridge = HueBridge(emu.address, USER, data_dir=tmp_path)
        await bridge.start()
        try:
            assert await HueSwitch(bridge, "TV strip").is_on() is None
            emu.set_state("7", on=False)
            assert await HueSwitch(bridge, "TV strip").is_on() is False
        finally:
            await bridge.stop()
