"""Distractions on a Hue bridge (a TV light strip, a blinking indicator): switched off
for the session, and only those that were on switched back on after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings, load_settings
from ambiance.devices.lights.hue.registration import HueDistraction, HueLightsConfig
from ambiance.errors import ConfigError
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.helpers import EventLog, make_library
from tests.hue_emulator import HueEmulator

pytestmark = pytest.mark.anyio

USER = "distractions0123456789abcdef0123456789ab"


def emulator() -> HueEmulator:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed", on=True, bri=200, ct=366)
    emu.add_light("7", "TV strip", on=True, bri=254, ct=200)
    emu.add_light("8", "Router LED", on=False, bri=10, ct=200)
    emu.add_group("1", "Bedroom", ["1"])
    return emu


def settings(tmp_path: Path, emu: HueEmulator, *lights: str) -> Settings:
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
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.1, shutdown_timeout=0.2),
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
