"""The Hue backend, through phue, over real HTTP, against the bridge emulator."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambiance.devices.lights.base import LightsBackend, LightState, LightTarget
from ambiance.devices.lights.hue import (
    BridgeBusy,
    BridgeUnreachable,
    DeviceOff,
    HueBridge,
    HueCredentials,
    HueError,
    HueLights,
    InvalidValue,
    LinkButtonNotPressed,
    ResourceNotAvailable,
    Unauthorized,
    pair,
)
from ambiance.devices.lights.hue.state import HueLightReport
from ambiance.devices.outside import Reports
from ambiance.errors import ConfigError
from ambiance.infra.clock import FakeClock
from tests.hue_emulator import HueEmulator
from tests.lights.conftest import USER

pytestmark = pytest.mark.anyio


class FakeSleep:
    """Stands in for asyncio.sleep in restore; records what it was asked to wait."""

    def __init__(self, on_call: Any = None) -> None:
        self.calls: list[float] = []
        self.on_call = on_call

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.on_call is not None:
            self.on_call()


async def started(bridge: HueBridge, group: str = "Bedroom", **kwargs: Any) -> HueLights:
    lights = HueLights(bridge, group, **kwargs)
    await lights.start()
    return lights


def native(emulator: HueEmulator, light_id: str) -> dict[str, Any]:
    """The attributes a snapshot keeps, as the emulator has them now."""
    state = emulator.state(light_id)
    keep = {"on", "bri", "colormode"} | ({"xy"} if state["colormode"] == "xy" else {"ct"})
    return {k: v for k, v in state.items() if k in keep}


# --- start and read --------------------------------------------------------------------


@pytest.mark.parametrize("group", ["Bedroom", "1", "bedroom"])
async def test_start_resolves_the_group_by_name_or_id(bridge: HueBridge, group: str) -> None:
    lights = await started(bridge, group)
    assert lights.group_id == "1"
    assert lights.light_ids == ("1", "2", "3", "4")
    assert lights.ct_range == (153, 500)  # the widest across the group's lights


async def test_it_is_a_lights_backend(bridge: HueBridge) -> None:
    backend: LightsBackend = HueLights(bridge, "Bedroom")
    assert backend.kind == "hue"


async def test_an_unknown_group_is_a_clear_error(bridge: HueBridge) -> None:
    with pytest.raises(ResourceNotAvailable) as caught:
        await started(bridge, "Kitchen")
    message = str(caught.value)
    assert "'Kitchen'" in message
    assert "'Bedroom'" in message and "'Living room'" in message


async def test_read_reports_people_units(bridge: HueBridge, emulator: HueEmulator) -> None:
    lights = await started(bridge)
    emulator.clear_requests()

    states = await lights.read()

    assert emulator.count() == 1 and emulator.count("GET", "/lights") == 1
    assert states == [
        LightState("1", "Bed left", on=True, brightness=78.7, kelvin=2732),
        LightState("2", "Bed right", on=True, brightness=47.2, kelvin=4000),
        LightState("3", "Ceiling", on=False, brightness=70.9, kelvin=3333),
        LightState("4", "Lamp", on=True, brightness=35.4, kelvin=None),  # xy: no kelvin
    ]


# --- apply -------------------------------------------------------------------------------


async def test_apply_is_one_group_command(bridge: HueBridge, emulator: HueEmulator) -> None:
    lights = await started(bridge)
    emulator.clear_requests()

    await lights.apply(LightTarget(on=True, brightness=30, kelvin=2700, transition=2.5))

    assert emulator.count() == 1
    (request,) = emulator.requests
    assert (request.method, request.resource) == ("PUT", "/groups/1/action")
    assert request.body == {"on": True, "bri": 76, "ct": 370, "transitiontime": 25}
    for light_id in ("1", "2", "3"):
        state = emulator.state(light_id)
        assert (state["on"], state["bri"], state["ct"]) == (True, 76, 370)
        assert emulator.last_transitiontime(light_id) == 25
    assert emulator.state("4")["colormode"] == "ct"


@pytest.mark.parametrize(
    ("kelvin", "sent", "per_light"),
    [
        (1800, 500, {"1": 454, "2": 500}),  # 556 mireds: past every light's warm end
        (10000, 153, {"1": 153, "2": 153}),  # 100 mireds: past the cold end
        (2000, 500, {"1": 454, "2": 500}),
    ],
)
async def test_apply_clamps_kelvin_to_the_groups_range(
    bridge: HueBridge, emulator: HueEmulator, kelvin: int, sent: int, per_light: dict[str, int]
) -> None:
    lights = await started(bridge)
    emulator.clear_requests()

    await lights.apply(LightTarget(on=True, brightness=100, kelvin=kelvin, transition=0))

    assert emulator.requests[0].body == {"on": True, "bri": 254, "ct": sent, "transitiontime": 0}
    for light_id, ct in per_light.items():
        assert emulator.state(light_id)["ct"] == ct  # the bridge clamps to each light's own


async def test_lights_without_ct_do_not_narrow_the_range(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    emulator.add_light("6", "Desk", ct_min=200, ct_max=400)
    emulator.add_light("7", "Go", supports_ct=False, colormode="xy")
    emulator.add_group("3", "Studio", ["6", "7"])
    lights = await started(bridge, "Studio")
    assert lights.ct_range == (200, 400)

    await lights.apply(LightTarget(on=True, kelvin=1800))
    await lights.apply(LightTarget(on=True, kelvin=8000))

    bodies = [r.body for r in emulator.requests if r.method == "PUT"]
    assert [b["ct"] for b in bodies] == [400, 200]


async def test_apply_off_and_without_kelvin(bridge: HueBridge, emulator: HueEmulator) -> None:
    lights = await started(bridge)
    emulator.clear_requests()

    await lights.apply(LightTarget(on=True, brightness=0, kelvin=None, transition=0.04))
    await lights.apply(LightTarget(on=False, transition=7000))

    assert [r.body for r in emulator.requests] == [
        {"on": True, "bri": 1, "transitiontime": 0},  # 0 % is the dimmest on, not off
        {"on": False, "transitiontime": 65535},  # transitiontime is a uint16
    ]
    assert not any(emulator.state(i)["on"] for i in ("1", "2", "3", "4"))


# --- snapshot and restore ------------------------------------------------------------------


async def test_snapshot_keeps_each_lights_native_state(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    lights = await started(bridge)
    emulator.clear_requests()

    snapshot = await lights.snapshot()

    assert emulator.count() == 1 and emulator.count("GET", "/lights") == 1
    assert {s.id: dict(s.state) for s in snapshot.lights} == {
        "1": {"on": True, "bri": 200, "ct": 366},
        "2": {"on": True, "bri": 120, "ct": 250},
        "3": {"on": False, "bri": 180, "ct": 300},
        "4": {"on": True, "bri": 90, "xy": [0.3127, 0.329]},
    }


async def test_restore_puts_every_light_back_exactly(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    def mid_fade() -> None:
        # Between the phases: the light that was off has faded to near-dark, still on.
        state = emulator.state("3")
        assert (state["on"], state["bri"]) == (True, 1)
        assert emulator.last_transitiontime("3") == 20

    sleep = FakeSleep(mid_fade)
    lights = await started(bridge, sleep=sleep)
    before = {i: native(emulator, i) for i in ("1", "2", "3", "4")}
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=10, kelvin=2200, transition=1))
    emulator.clear_requests()

    await lights.restore(snapshot, transition=2.0)

    assert {i: native(emulator, i) for i in ("1", "2", "3", "4")} == before
    assert sleep.calls == [2.0]  # once, for all the lights that were off
    puts = [(r.resource, r.body) for r in emulator.requests if r.method == "PUT"]
    assert puts == [
        ("/lights/1/state", {"on": True, "bri": 200, "ct": 366, "transitiontime": 20}),
        ("/lights/2/state", {"on": True, "bri": 120, "ct": 250, "transitiontime": 20}),
        ("/lights/3/state", {"bri": 1, "transitiontime": 20}),
        ("/lights/4/state", {"on": True, "bri": 90, "xy": [0.3127, 0.329], "transitiontime": 20}),
        ("/lights/3/state", {"on": False, "bri": 180, "ct": 300, "transitiontime": 0}),
    ]


async def test_restore_with_no_transition_switches_off_in_one_step(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    sleep = FakeSleep()
    lights = await started(bridge, sleep=sleep)
    before = {i: native(emulator, i) for i in ("1", "2", "3", "4")}
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=10, kelvin=2200))
    emulator.clear_requests()

    await lights.restore(snapshot, transition=0)

    assert {i: native(emulator, i) for i in ("1", "2", "3", "4")} == before
    assert sleep.calls == []
    assert [r.body for r in emulator.requests if r.resource == "/lights/3/state"] == [
        {"on": False, "bri": 180, "ct": 300, "transitiontime": 0}
    ]


async def test_restore_with_no_light_off_does_not_wait(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    emulator.set_state("3", on=True)
    sleep = FakeSleep()
    lights = await started(bridge, sleep=sleep)
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=False))

    await lights.restore(snapshot, transition=1.0)

    assert sleep.calls == []
    assert all(emulator.state(i)["on"] for i in ("1", "2", "3", "4"))


async def test_restore_a_light_switched_off_by_hand_is_not_an_error(
    bridge: HueBridge, emulator: HueEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = FakeSleep()
    lights = await started(bridge, sleep=sleep)
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=50, kelvin=2700))
    emulator.set_state("3", on=False)  # someone used the wall switch
    caplog.set_level(logging.DEBUG, logger="ambiance.devices.lights.hue")

    await lights.restore(snapshot, transition=1.0)  # no error

    assert sleep.calls == []  # nothing to fade
    assert emulator.state("3")["on"] is False
    assert native(emulator, "1") == {"on": True, "bri": 200, "ct": 366, "colormode": "ct"}
    assert "light 3 is already off" in caplog.text  # the bridge's 201, logged at debug


async def test_restore_a_201_in_the_fade_does_not_stop_the_others(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    lights = await started(bridge, sleep=FakeSleep())
    before = {i: native(emulator, i) for i in ("1", "2", "4")}
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=50, kelvin=2700))
    emulator.fail_next(1, 201, path_contains="/lights/3/state")

    await lights.restore(snapshot, transition=1.0)

    assert {i: native(emulator, i) for i in ("1", "2", "4")} == before
    assert emulator.state("3")["on"] is False


async def test_restore_tries_every_light_then_raises_other_errors(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    lights = await started(bridge, sleep=FakeSleep())
    before = {i: native(emulator, i) for i in ("2", "3", "4")}
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=50, kelvin=2700))
    emulator.fail_next(1, 7, path_contains="/lights/1/state")

    with pytest.raises(InvalidValue):
        await lights.restore(snapshot, transition=1.0)

    assert {i: native(emulator, i) for i in ("2", "3", "4")} == before


# --- pairing and credentials ----------------------------------------------------------------


async def test_pairing_waits_for_the_link_button(emulator: HueEmulator, tmp_path: Path) -> None:
    def press_after_two_tries() -> None:
        # Someone walks to the bridge after ambiance has been told "not pressed" twice.
        if emulator.wait_for("POST", "/api", count=2, timeout=5):
            emulator.press_link_button()

    presser = threading.Thread(target=press_after_two_tries)
    presser.start()
    waits: list[float] = []

    username = await pair(emulator.address, timeout=5, interval=0.01, on_wait=waits.append)
    presser.join(timeout=5)

    assert len(waits) >= 2 and all(0 < left <= 5 for left in waits)
    assert username in emulator.users
    (devicetype,) = emulator.requests[0].body.values()
    assert devicetype.startswith("ambiance#")

    credentials = HueCredentials(tmp_path / "data")
    credentials.save(emulator.address, username)
    stored = HueCredentials(tmp_path / "data").load(emulator.address)
    assert stored == username
    hub = HueBridge(emulator.address, stored)
    try:
        assert set(await hub.request("GET", "/lights")) == {"1", "2", "3", "4", "5"}
    finally:
        await hub.stop()


async def test_pairing_gives_up_with_a_friendly_message(emulator: HueEmulator) -> None:
    with pytest.raises(LinkButtonNotPressed) as caught:
        await pair(emulator.address, timeout=0.1, interval=0.02)

    assert "press the round button on the bridge" in str(caught.value)
    assert caught.value.errors[0].type == 101
    assert emulator.count("POST") >= 2


async def test_usernames_never_reach_the_logs_in_full(
    emulator: HueEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.press_link_button()
    username = await pair(emulator.address, timeout=1)
    hub = HueBridge(emulator.address, username)
    try:
        await started(hub)
    finally:
        await hub.stop()

    assert "GET /api/" in caplog.text  # phue's and our own request logs are there ...
    assert username not in caplog.text  # ... with the username cut short


def test_a_credentials_file_over_its_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hue.json"
    path.write_text(json.dumps({"10.0.0.2": "x" * 70_000}))  # valid, but over 64 KiB
    with pytest.raises(ConfigError) as caught:
        HueCredentials(tmp_path).load("10.0.0.2")
    assert caught.value.problems == [
        f"{path}: the file is too large to read: 70,016 bytes, over the limit of 64 KiB "
        "(65,536 bytes) for the Hue credentials file"
    ]


def test_credentials_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "dir"
    credentials = HueCredentials(data_dir)
    assert credentials.load("10.0.0.2") is None

    credentials.save("10.0.0.2", "alpha")
    credentials.save("10.0.0.3:8080", "beta")
    credentials.save("10.0.0.2", "gamma")

    assert credentials.load("10.0.0.2") == "gamma"
    assert credentials.load("10.0.0.3:8080") == "beta"
    assert stat.S_IMODE(credentials.path.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == ["hue.json"]  # no temp file left


# --- errors ----------------------------------------------------------------------------------


async def test_an_unknown_username_is_unauthorized(emulator: HueEmulator) -> None:
    hub = HueBridge(emulator.address, "not-a-user")
    try:
        with pytest.raises(Unauthorized) as caught:
            await started(hub)
        # A bridge still shows anyone a reduced config; that is not an error.
        config = await hub.request("GET", "/config")
    finally:
        await hub.stop()
    assert caught.value.errors[0].type == 1
    assert config["apiversion"] == "1.50.0" and "whitelist" not in config
    assert emulator.count() == 2  # not retried


async def test_no_username_is_unauthorized_without_asking(emulator: HueEmulator) -> None:
    with pytest.raises(Unauthorized, match="ambiance pair"):
        await HueBridge(emulator.address, None).request("GET", "/lights")
    assert emulator.count() == 0


async def test_an_unknown_resource(bridge: HueBridge) -> None:
    with pytest.raises(ResourceNotAvailable) as caught:
        await bridge.request("GET", "/lights/9")
    assert caught.value.errors[0].address == "/lights/9"
    assert "resource, /lights/9, not available" in str(caught.value)


async def test_an_invalid_value_keeps_the_partial_success(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    with pytest.raises(InvalidValue) as caught:
        await bridge.request("PUT", "/lights/1/state", {"bri": 300, "on": False})

    assert [e.type for e in caught.value.errors] == [7]
    assert caught.value.errors[0].address == "/lights/1/state/bri"
    assert caught.value.successes == ({"/lights/1/state/on": False},)
    assert emulator.state("1")["on"] is False
    assert emulator.count() == 1  # a refusal is not retried


async def test_201_carries_every_error(bridge: HueBridge, emulator: HueEmulator) -> None:
    with pytest.raises(DeviceOff) as caught:
        await bridge.request("PUT", "/lights/3/state", {"bri": 20, "ct": 200, "alert": "none"})
    assert [e.address for e in caught.value.errors] == [
        "/lights/3/state/bri",
        "/lights/3/state/ct",
    ]
    assert caught.value.successes == ({"/lights/3/state/alert": "none"},)


async def test_apply_raises_invalid_value(bridge: HueBridge, emulator: HueEmulator) -> None:
    lights = await started(bridge)
    emulator.fail_next(1, 7, path_contains="/groups/1/action")
    with pytest.raises(InvalidValue):
        await lights.apply(LightTarget(on=True))


async def test_an_unknown_error_type_is_a_hue_error(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    emulator.fail_next(1, 999)
    with pytest.raises(HueError) as caught:
        await bridge.request("GET", "/lights")
    assert type(caught.value) is HueError and caught.value.errors[0].type == 999


GARBAGE = [
    pytest.param(200, "<html><body>Oops</body></html>", id="html"),
    pytest.param(503, "<html><body>503 Service Unavailable</body></html>", id="503"),
    pytest.param(200, "", id="empty"),
    pytest.param(200, b"\xff\xfe\x00junk", id="binary"),
    pytest.param(None, b"\x00\x01 not http at all\r\n\r\n", id="not-http"),
]


@pytest.mark.parametrize(("status", "body"), GARBAGE)
async def test_garbage_is_a_busy_bridge_after_retries(
    bridge: HueBridge, emulator: HueEmulator, status: int | None, body: str | bytes
) -> None:
    emulator.respond_raw_next(3, status, body)
    with pytest.raises(BridgeBusy):
        await bridge.request("GET", "/lights")
    assert emulator.count() == 3  # the first try and two retries


@pytest.mark.parametrize(("status", "body"), GARBAGE)
async def test_a_passing_hiccup_is_retried(
    bridge: HueBridge, emulator: HueEmulator, status: int | None, body: str | bytes
) -> None:
    emulator.respond_raw_next(2, status, body)
    assert "1" in await bridge.request("GET", "/lights")
    assert emulator.count() == 3


async def test_error_901_is_busy_and_retried(bridge: HueBridge, emulator: HueEmulator) -> None:
    emulator.fail_next(1, 901)
    assert "1" in await bridge.request("GET", "/lights")
    emulator.fail_next(3, 901)
    with pytest.raises(BridgeBusy):
        await bridge.request("GET", "/lights")


async def test_a_stopped_bridge_is_unreachable_until_it_is_back(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    lights = await started(bridge)
    port = emulator.port
    emulator.stop()

    began = time.monotonic()
    with pytest.raises(BridgeUnreachable):
        await lights.apply(LightTarget(on=True))
    assert time.monotonic() - began < 1.0

    emulator.start()
    assert emulator.port == port
    await lights.apply(LightTarget(on=True))
    assert emulator.count("PUT", "/groups/1/action") == 1


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_closed_port_is_unreachable(closed_port: int) -> None:
    hub = HueBridge(f"127.0.0.1:{closed_port}", USER, retries=1)
    try:
        with pytest.raises(BridgeUnreachable, match="cannot reach"):
            await hub.request("GET", "/lights")
    finally:
        await hub.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]
    # Closing resets the pending connections, which frees phue's blocked thread.


async def test_a_bridge_that_does_not_answer_times_out(silent_port: int) -> None:
    hub = HueBridge(f"127.0.0.1:{silent_port}", USER, timeout=0.1, retries=1)
    try:
        began = time.monotonic()
        with pytest.raises(BridgeUnreachable, match=r"did not answer within 0\.1 s"):
            await hub.request("GET", "/lights")
        assert time.monotonic() - began < 1.0
    finally:
        await hub.stop()


# --- bridge protection: at most 10 light and 1 group command a second -------------------


class FakeTime(FakeClock):
    """A fake clock whose sleeps move it at once, and are recorded (no real waiting)."""

    def __init__(self) -> None:
        super().__init__(monotonic="fake")
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@pytest.fixture
async def limited(emulator: HueEmulator, tmp_path: Path) -> Any:
    fake = FakeTime()
    hub = HueBridge(emulator.address, USER, retries=0, data_dir=tmp_path, clock=fake)
    await hub.start()
    yield hub, fake
    await hub.stop()


def sent_at(emulator: HueEmulator, fake_times: list[float], path: str) -> list[float]:
    return [t for r, t in zip(emulator.requests, fake_times, strict=True) if r.resource == path]


async def test_group_commands_are_spaced_a_second_apart(
    limited: Any, emulator: HueEmulator
) -> None:
    import asyncio

    hub, fake = limited
    body = {"on": True, "bri": 100}
    await asyncio.gather(*(hub.request("PUT", "/groups/1/action", body) for _ in range(3)))
    assert emulator.count("PUT", "/groups/1/action") == 3
    assert fake.sleeps == [1.0, 1.0]  # the first at once, then one a second
    # Reads and light commands do not wait for the group's turn.
    await hub.request("GET", "/lights")
    await hub.request("PUT", "/lights/1/state", {"on": True})
    assert fake.sleeps == [1.0, 1.0]


async def test_light_commands_at_most_ten_a_second(limited: Any, emulator: HueEmulator) -> None:
    import asyncio

    hub, fake = limited
    await asyncio.gather(
        *(hub.request("PUT", f"/lights/{i % 4 + 1}/state", {"on": True}) for i in range(12))
    )
    assert emulator.count("PUT", "/lights/") == 12
    assert fake.sleeps == pytest.approx([0.1] * 11)
    # A group command is limited on its own budget: no wait for it.
    await hub.request("PUT", "/groups/1/action", {"on": True})
    assert len(fake.sleeps) == 11


async def test_spacing_counts_from_the_end_of_the_previous_command(
    limited: Any, emulator: HueEmulator
) -> None:
    hub, fake = limited
    await hub.request("PUT", "/groups/1/action", {"on": True})
    fake.advance(0.4)  # time passes between two commands
    await hub.request("PUT", "/groups/1/action", {"on": False})
    assert fake.sleeps == [pytest.approx(0.6)]
    fake.advance(5)
    await hub.request("PUT", "/groups/1/action", {"on": True})
    assert fake.sleeps == [pytest.approx(0.6)]  # long enough ago: at once


async def test_a_retried_command_waits_its_turn_too(emulator: HueEmulator, tmp_path: Path) -> None:
    fake = FakeTime()
    hub = HueBridge(emulator.address, USER, retries=1, clock=fake)
    try:
        emulator.fail_next(1, 901, path_contains="/groups/1/action")
        await hub.request("PUT", "/groups/1/action", {"on": True})
        assert emulator.count("PUT", "/groups/1/action") == 2
        assert fake.sleeps == [1.0]  # the retry is a second command to the bridge
    finally:
        await hub.stop()


async def test_real_spacing_at_the_bridge(bridge: HueBridge, emulator: HueEmulator) -> None:
    import asyncio

    # The real clock: what the bridge sees is at least a second apart.
    await asyncio.gather(
        *(bridge.request("PUT", "/groups/2/action", {"on": True}) for _ in range(2))
    )
    times = [r.at for r in emulator.requests if r.resource == "/groups/2/action"]
    assert len(times) == 2 and times[1] - times[0] >= 1.0


MORE_GARBAGE = [
    pytest.param(503, '{"error": "overloaded"}', id="503-json"),
    pytest.param(502, "<html><body>502 Bad Gateway</body></html>", id="502-html"),
    pytest.param(200, '[{"success": {"/lights/1/state/on": tr', id="truncated-json"),
    pytest.param(200, '"just a string"', id="json-string"),
    pytest.param(200, "[1, 2, 3]", id="json-list"),
]


@pytest.mark.parametrize(("status", "body"), MORE_GARBAGE)
async def test_a_garbled_bridge_never_crashes_the_room(
    bridge: HueBridge,
    emulator: HueEmulator,
    status: int,
    body: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Whatever the bridge answers, reading the room's lights is a busy bridge (a
    # DeviceUnavailable the coordinator retries), never a TypeError or AttributeError.
    lights = await started(bridge)
    emulator.respond_raw_next(3, status, body, path_contains="/lights")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BridgeBusy):
            await lights.read()
        # A JSON reply of the wrong shape is not retried inside request(): read it away.
        for _ in range(2):
            with contextlib.suppress(BridgeBusy):
                await lights.read()
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("ambiance")]
    assert [s.id for s in await lights.read()] == ["1", "2", "3", "4"]  # and back when well


# --- state the bridge should never send ------------------------------------------------


@pytest.mark.parametrize(
    ("state", "valid"),
    [
        (
            {"on": True, "bri": 254, "ct": 366, "colormode": "ct", "reachable": True},
            {"on": True, "bri": 254, "ct": 366, "colormode": "ct", "reachable": True},
        ),
        ({"on": "yes", "bri": 0, "ct": -5}, {}),
        ({"on": 1, "bri": 1e308, "ct": 501, "reachable": "no"}, {}),
        ({"bri": 200.0, "ct": 152, "hue": 65536, "sat": 255}, {}),
        ({"xy": [0.3, 0.4], "hue": 0, "sat": 254}, {"xy": [0.3, 0.4], "hue": 0, "sat": 254}),
        ({"xy": [2, 0.4]}, {}),
        ({"xy": [0.3]}, {}),
        ({"xy": "0.3,0.4", "colormode": "rgb"}, {}),
        ({"effect": "colorloop", "alert": "none", "mode": "homeautomation"}, {}),
    ],
)
def test_a_hue_light_state_keeps_only_its_valid_fields(
    state: dict[str, Any], valid: dict[str, Any]
) -> None:
    assert Reports(HueLightReport, "Hue bridge").valid("light 1", state) == valid


async def test_state_the_bridge_should_never_send_is_neither_snapshotted_nor_restored(
    bridge: HueBridge, emulator: HueEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.set_state("1", bri=1e308, ct=-5)
    emulator.set_state("3", on="yes")  # the Ceiling was off: now nobody knows
    emulator.set_state("4", xy=[2, 0.329])
    lights = await started(bridge)

    shown = {s.id: s for s in await lights.read()}
    assert (shown["1"].brightness, shown["1"].kelvin) == (None, None)
    assert (shown["3"].on, shown["3"].reachable) == (False, False)  # not known: not guessed
    snapshot = await lights.snapshot()
    assert {s.id: dict(s.state) for s in snapshot.lights} == {
        "1": {"on": True},
        "2": {"on": True, "bri": 120, "ct": 250},
        "3": {"bri": 180, "ct": 300},
        "4": {"on": True, "bri": 90},
    }
    await lights.apply(LightTarget(on=True, brightness=10, kelvin=2200, transition=1))
    emulator.clear_requests()

    await lights.restore(snapshot, transition=2.0)  # and nothing the bridge refuses

    puts = [(r.resource, r.body) for r in emulator.requests if r.method == "PUT"]
    assert puts == [
        ("/lights/1/state", {"on": True, "transitiontime": 20}),
        ("/lights/2/state", {"on": True, "bri": 120, "ct": 250, "transitiontime": 20}),
        ("/lights/3/state", {"bri": 180, "ct": 300, "transitiontime": 20}),  # left on
        ("/lights/4/state", {"on": True, "bri": 90, "transitiontime": 20}),
    ]
    assert emulator.state("3")["on"] is True
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 4, said  # once per light and field, though read three times
    assert f"Hue bridge at {emulator.address}: light 1 (Bed left) sent bri 1e+308" in said[0]
    assert any("light 3 (Ceiling) sent on 'yes'" in s for s in said)


async def test_a_garbled_ct_range_is_left_out_of_the_groups_range(
    bridge: HueBridge, emulator: HueEmulator
) -> None:
    emulator.lights["2"]["capabilities"]["control"]["ct"] = {"min": "153", "max": None}
    lights = await started(bridge)
    assert lights.ct_range == (153, 454)  # from the lights that say it well
