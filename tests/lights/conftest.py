"""A Hue v1 bridge emulator on a loopback port of its own, and a bridge client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ambiance.devices.lights.hue import HueBridge
from tests.hue_emulator import HueEmulator

USER = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def emulator() -> Iterator[HueEmulator]:
    """Bedroom (group 1): two ct lights with different ranges, one off, one in xy."""
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed left", ct_min=153, ct_max=454, on=True, bri=200, ct=366)
    emu.add_light("2", "Bed right", ct_min=153, ct_max=500, on=True, bri=120, ct=250)
    emu.add_light("3", "Ceiling", on=False, bri=180, ct=300)
    emu.add_light("4", "Lamp", on=True, bri=90, colormode="xy", xy=(0.3127, 0.329))
    emu.add_light("5", "Hall", on=True, bri=254, ct=153)
    emu.add_group("1", "Bedroom", ["1", "2", "3", "4"])
    emu.add_group("2", "Living room", ["5"])
    with emu:
        yield emu


@pytest.fixture
async def bridge(emulator: HueEmulator, tmp_path: Path) -> AsyncIterator[HueBridge]:
    # A small timeout: every failure path in these tests ends in well under 1 s.
    hub = HueBridge(emulator.address, USER, timeout=2.0, retries=2, data_dir=tmp_path)
    await hub.start()
    yield hub
    await hub.stop()
