"""The Zigbee2MQTT lights backend against a real Mosquitto and a fake Zigbee2MQTT
(tests/fake_zigbee2mqtt.py): one publish per change with a group, reads from what the
devices publish, an exact snapshot and restore, and the broker or Zigbee2MQTT going away.
Up to the whole service: spa start -> next -> stop through `Ambiance`.

Nothing sleeps to wait: tests wait for a condition (the fake's, the backend's, the bus's)
with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ambiance.config import load_settings
from ambiance.core.events import EventBus
from ambiance.devices.lights.base import LightState, LightTarget
from ambiance.devices.lights.zigbee2mqtt import (
    LightReport,
    Zigbee2MqttLights,
    Zigbee2MqttLightsConfig,
)
from ambiance.devices.outside import Reports
from ambiance.errors import ConfigError, DeviceUnavailable
from ambiance.infra.clock import FakeClock, SystemClock
from ambiance.infra.mqtt import MqttConnection
from ambiance.service import Ambiance
from tests.fake_zigbee2mqtt import FakeLight, FakeZigbee2Mqtt
from tests.helpers import EventLog, make_library
from tests.mosquitto import Mosquitto, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0
ROOM = ["bed-left", "bed-right", "ceiling", "lamp"]


def bedroom_lights() -> list[FakeLight]:
    """Two ct lights with different ranges, one off, one in xy mode; and one elsewhere."""
    return [
        FakeLight("bed-left", mired_min=153, mired_max=454, brightness=200, color_temp=366),
        FakeLight("bed-right", brightness=120, color_temp=250),
        FakeLight("ceiling", state="OFF", brightness=180, color_temp=300),
        FakeLight(
            "lamp", brightness=90, color_mode="xy", color={"x": 0.3127, "y": 0.329}, color_temp=153
        ),
        FakeLight("hall", brightness=254, color_temp=153),
    ]


def config(**overrides: Any) -> Zigbee2MqttLightsConfig:
    values: dict[str, Any] = {"backend": "zigbee2mqtt", "group": "bedroom", "lights": ROOM}
    values.update(overrides)
    return Zigbee2MqttLightsConfig(**values)


class Sleeps:
    """An injected sleep that records and returns at once (the fade is the light's job)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake(mosquitto: Mosquitto) -> Iterator[FakeZigbee2Mqtt]:
    with FakeZigbee2Mqtt(mosquitto, bedroom_lights(), {"bedroom": ROOM}) as z2m:
        yield z2m


@pytest.fixture
async def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def conn(mosquitto: Mosquitto, bus: EventBus) -> AsyncIterator[MqttConnection]:
    connection = MqttConnection(mqtt_settings(mosquitto), bus, SystemClock())
    async with connection:
        assert await connection.wait_connected(TIMEOUT)
        yield connection


async def started(
    conn: MqttConnection, cfg: Zigbee2MqttLightsConfig, sleeps: Sleeps | None = None
) -> Zigbee2MqttLights:
    backend = Zigbee2MqttLights(
        conn, cfg, sleep=sleeps or Sleeps(), state_wait=0.3, echo_wait=TIMEOUT
    )
    await backend.start()
    return backend


async def heard_all(backend: Zigbee2MqttLights) -> None:
    lights = backend.config.lights
    assert await backend._wait_until(lambda: all(n in backend.states for n in lights), TIMEOUT)


@pytest.fixture
async def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def lights(
    conn: MqttConnection, fake: FakeZigbee2Mqtt, sleeps: Sleeps
) -> AsyncIterator[Zigbee2MqttLights]:
    backend = await started(conn, config(), sleeps)
    await heard_all(backend)
    yield backend
    await backend.stop()


def publish(broker: Mosquitto, topic: str, payload: str) -> None:
    """Publish (retained) from a client of its own, as another program on the broker would."""
    with Subscriber(broker, topic) as other:
        other.publish(topic, payload, retain=True)


def by_name(states: list[LightState]) -> dict[str, LightState]:
    return {s.name: s for s in states}


# --- apply ------------------------------------------------------------------------------


async def test_apply_is_one_group_publish(lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt) -> None:
    fake.clear()
    await lights.apply(LightTarget(on=True, brightness=20, kelvin=2200, transition=2))

    sets = fake.sets()
    assert [c.topic for c in sets] == ["zigbee2mqtt/bedroom/set"]
    # 20 % -> 51 of 254; 2200 K -> 455 mireds; seconds as Zigbee2MQTT takes them.
    assert sets[0].payload == {"state": "ON", "brightness": 51, "color_temp": 455, "transition": 2}
    assert fake.light("bed-left").color_temp == 454  # clamped into that light's own range
    assert {fake.light(n).brightness for n in ROOM} == {51}
    assert fake.light("hall").brightness == 254  # not in the group
    # apply waits for the lights to publish their new state, so a read shows it at once.
    now = by_name(await lights.read())
    assert {(s.on, s.brightness) for s in now.values()} == {(True, 20.1)}
    assert now["bed-right"].kelvin == 2198
    assert now["lamp"].kelvin == 2198  # a ct command moved it out of xy mode

    await lights.apply(LightTarget(on=False, transition=3))
    sets = fake.sets()
    assert len(sets) == 2
    assert sets[1].payload == {"state": "OFF", "transition": 3}
    assert not any(s.on for s in await lights.read())


async def test_apply_without_a_group_is_one_publish_per_light(
    conn: MqttConnection, fake: FakeZigbee2Mqtt
) -> None:
    backend = await started(conn, config(group=None, lights=["bed-left", "bed-right"]))
    await heard_all(backend)
    fake.clear()
    await backend.apply(LightTarget(on=True, brightness=100, kelvin=6500, transition=0.4))
    sets = fake.sets()
    assert sorted(c.topic for c in sets) == [
        "zigbee2mqtt/bed-left/set",
        "zigbee2mqtt/bed-right/set",
    ]
    expected = {"state": "ON", "brightness": 254, "color_temp": 154, "transition": 0.4}
    assert all(c.payload == expected for c in sets)
    assert fake.light("ceiling").state == "OFF"  # not configured, not touched
    await backend.stop()


async def test_the_configured_range_bounds_color_temp(
    conn: MqttConnection, fake: FakeZigbee2Mqtt
) -> None:
    backend = await started(conn, config(mired_min=200, mired_max=400))
    await heard_all(backend)
    fake.clear()
    await backend.apply(LightTarget(on=True, brightness=50, kelvin=1800))
    assert fake.sets()[0].payload["color_temp"] == 400
    await backend.stop()


# --- read ---------------------------------------------------------------------------


async def test_read_reflects_what_the_devices_publish(
    lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt, mosquitto: Mosquitto
) -> None:
    now = by_name(await lights.read())
    assert [s.name for s in await lights.read()] == ROOM
    assert now["bed-left"] == LightState("bed-left", "bed-left", True, 78.7, 2732, True)
    assert now["ceiling"].on is False
    assert now["ceiling"].brightness == 70.9
    assert now["lamp"].kelvin is None  # in xy mode: no colour temperature to show

    fake.change("bed-right", state="OFF")  # by hand
    assert await lights._wait_until(lambda: lights.states["bed-right"]["state"] == "OFF", TIMEOUT)
    assert by_name(await lights.read())["bed-right"].on is False

    fake.set_available("lamp", False)
    assert await lights._wait_until(lambda: lights.available.get("lamp") is False, TIMEOUT)
    assert by_name(await lights.read())["lamp"].reachable is False
    # The legacy availability payload is a plain word.
    await asyncio.to_thread(publish, mosquitto, "zigbee2mqtt/lamp/availability", "online")
    assert await lights._wait_until(lambda: lights.available.get("lamp") is True, TIMEOUT)
    assert by_name(await lights.read())["lamp"].reachable is True


async def test_get_fills_the_cache_when_nothing_is_retained(
    mosquitto: Mosquitto, conn: MqttConnection
) -> None:
    lights = [FakeLight(n) for n in ROOM]
    with FakeZigbee2Mqtt(mosquitto, lights, {"bedroom": ROOM}, retain=False) as z2m:
        backend = await started(conn, config())
        await heard_all(backend)
        assert sorted(c.entity for c in z2m.gets()) == sorted(ROOM)
        assert all(c.payload == {"state": ""} for c in z2m.gets())
        await backend.stop()


# --- snapshot and restore ---------------------------------------------------------------


async def test_snapshot_and_an_exact_restore(
    lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt, sleeps: Sleeps
) -> None:
    before = fake.exact_states()
    snapshot = await lights.snapshot()
    saved = {s.id: dict(s.state) for s in snapshot.lights}
    assert saved == {
        "bed-left": {"state": "ON", "brightness": 200, "color_temp": 366},
        "bed-right": {"state": "ON", "brightness": 120, "color_temp": 250},
        "ceiling": {"state": "OFF", "brightness": 180, "color_temp": 300},
        "lamp": {"state": "ON", "brightness": 90, "color": {"x": 0.3127, "y": 0.329}},
    }

    await lights.apply(LightTarget(on=True, brightness=5, kelvin=2000, transition=3))
    assert fake.exact_states() != before
    fake.clear()
    await lights.restore(snapshot, 1.5)

    assert fake.exact_states() == before
    assert sleeps.calls == [1.5]  # one wait for every light that was faded
    assert [c.payload for c in fake.sets("bed-left")] == [
        {"state": "ON", "brightness": 200, "color_temp": 366, "transition": 1.5}
    ]
    assert [c.payload for c in fake.sets("lamp")] == [
        {"state": "ON", "brightness": 90, "color": {"x": 0.3127, "y": 0.329}, "transition": 1.5}
    ]
    # The light that was off: faded down, switched off with its colour, then its brightness
    # set without switching it (an explicit null state), so it comes back as it was.
    assert [c.payload for c in fake.sets("ceiling")] == [
        {"brightness": 1, "color_temp": 300, "transition": 1.5},
        {"state": "OFF", "color_temp": 300, "transition": 0},
        {"state": None, "brightness": 180, "transition": 0},
    ]
    assert fake.sets("bedroom") == []  # the restore is per light
    # No OFF ever carries a brightness: Zigbee2MQTT would drop it (or report 0).
    assert not any(
        "brightness" in c.payload for c in fake.sets() if c.payload.get("state") == "OFF"
    )
    # restore waits for the lights' answers too, so a read shows the room as it was.
    now = by_name(await lights.read())
    assert (now["ceiling"].on, now["ceiling"].brightness) == (False, 70.9)
    assert now["bed-left"].brightness == 78.7


async def test_a_restore_without_transition_does_not_fade(
    lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt, sleeps: Sleeps
) -> None:
    before = fake.exact_states()
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=40, kelvin=2700))
    fake.clear()
    await lights.restore(snapshot, 0)
    assert fake.exact_states() == before
    assert sleeps.calls == []
    assert [c.payload for c in fake.sets("ceiling")] == [
        {"state": "OFF", "color_temp": 300, "transition": 0},
        {"state": None, "brightness": 180, "transition": 0},
    ]


async def test_a_light_that_was_switched_off_meanwhile_is_not_faded(
    lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt, sleeps: Sleeps
) -> None:
    before = fake.exact_states()
    snapshot = await lights.snapshot()
    await lights.apply(LightTarget(on=True, brightness=40, kelvin=2700))
    fake.change("ceiling", state="OFF")  # someone used the wall switch
    assert await lights._wait_until(lambda: lights.states["ceiling"]["state"] == "OFF", TIMEOUT)
    await lights.restore(snapshot, 2)
    assert sleeps.calls == []  # nothing was faded: nothing to wait for
    assert fake.exact_states() == before


async def test_restore_puts_an_hs_light_back_by_hue_and_saturation(
    mosquitto: Mosquitto, conn: MqttConnection
) -> None:
    lights = [
        FakeLight("strip", color_mode="hs", color={"hue": 20.0, "saturation": 80.0}),
    ]
    with FakeZigbee2Mqtt(mosquitto, lights) as z2m:
        backend = await started(conn, config(group=None, lights=["strip"]))
        snapshot = await backend.snapshot()
        assert dict(snapshot.lights[0].state) == {
            "state": "ON",
            "brightness": 200,
            "color": {"hue": 20.0, "saturation": 80.0},
        }
        await backend.apply(LightTarget(on=True, brightness=10, kelvin=2200))
        await backend.restore(snapshot, 1)
        assert z2m.light("strip").color_mode == "hs"
        assert z2m.light("strip").color == {"hue": 20.0, "saturation": 80.0}
        await backend.stop()


async def test_no_snapshot_before_every_light_said_its_state(
    mosquitto: Mosquitto, conn: MqttConnection
) -> None:
    lights = bedroom_lights()
    lights[3].silent = True  # "lamp": its state is not retained and it does not answer
    with FakeZigbee2Mqtt(mosquitto, lights, {"bedroom": ROOM}) as z2m:
        backend = await started(conn, config())
        with pytest.raises(DeviceUnavailable, match="no state from zigbee2mqtt for lamp yet"):
            await backend.snapshot()
        # It was asked again (beyond the ask at start), so a late device can still answer.
        assert len(z2m.gets("lamp")) >= 2
        z2m.report("lamp")
        snapshot = await backend.snapshot()
        assert [s.id for s in snapshot.lights] == ROOM
        await backend.stop()


# --- the broker or Zigbee2MQTT away -----------------------------------------------------


async def test_the_broker_down_makes_apply_raise_and_it_recovers(
    lights: Zigbee2MqttLights,
    fake: FakeZigbee2Mqtt,
    mosquitto: Mosquitto,
    conn: MqttConnection,
    bus: EventBus,
) -> None:
    log = EventLog(bus)
    mosquitto.stop()
    await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
    assert not conn.connected
    with pytest.raises(DeviceUnavailable, match="not connected to the MQTT broker"):
        await lights.apply(LightTarget(on=True, brightness=30))
    with pytest.raises(DeviceUnavailable):
        await lights.snapshot()
    with pytest.raises(DeviceUnavailable):
        await lights.read()

    # The broker comes back empty (no retained states): the fake publishes again when it
    # reconnects, and the backend asks again when it does.
    lights.states.clear()
    mosquitto.start()
    assert await conn.wait_connected(TIMEOUT)
    await heard_all(lights)
    # The broker may have published the fake's will as it went down: wait for its `online`.
    assert await lights._wait_until(lambda: lights.bridge_online is not False, TIMEOUT)
    fake.clear()
    await lights.apply(LightTarget(on=True, brightness=30, transition=0))
    assert [c.payload for c in fake.sets()] == [{"state": "ON", "brightness": 76, "transition": 0}]
    assert fake.light("ceiling").state == "ON"


async def test_zigbee2mqtt_offline_makes_the_lights_unavailable(
    lights: Zigbee2MqttLights, fake: FakeZigbee2Mqtt
) -> None:
    await asyncio.to_thread(fake.stop)
    assert await lights._wait_until(lambda: lights.bridge_online is False, TIMEOUT)
    with pytest.raises(DeviceUnavailable, match="Zigbee2MQTT is offline"):
        await lights.apply(LightTarget(on=True, brightness=30))
    with pytest.raises(DeviceUnavailable, match="Zigbee2MQTT is offline"):
        await lights.read()

    await asyncio.to_thread(fake.start)
    assert await lights._wait_until(lambda: lights.bridge_online is True, TIMEOUT)
    await lights.apply(LightTarget(on=True, brightness=30, kelvin=2700))
    assert fake.light("bed-right").brightness == 76


# --- settings ---------------------------------------------------------------------------


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        config(lights=[])
    with pytest.raises(ValidationError, match="wildcards"):
        config(lights=["lamp/#"])
    with pytest.raises(ValidationError, match="once"):
        config(lights=["lamp", "lamp"])
    with pytest.raises(ValidationError, match="empty levels"):
        config(group="bed//room")
    with pytest.raises(ValidationError, match="mired_min"):
        config(mired_min=400, mired_max=300)
    with pytest.raises(ValidationError, match="Extra inputs"):
        config(bridge="x")
    assert config(lights=["bedroom/lamp"]).lights == ["bedroom/lamp"]  # '/' is allowed


def test_a_zigbee2mqtt_room_needs_a_broker_and_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "rooms:\n  bedroom:\n    lights:\n      backend: zigbee2mqtt\n      lights: [lamp]\n"
    )
    with pytest.raises(ConfigError, match=r"rooms\.bedroom\.lights: zigbee2mqtt lights need a"):
        load_settings(path, data_dir=tmp_path)
    path.write_text(
        "mqtt: {host: 127.0.0.1}\n"
        "rooms:\n  bedroom:\n    lights:\n      backend: zigbee2mqtt\n      lights: []\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, data_dir=tmp_path)
    assert any("rooms.bedroom.lights.lights:" in p for p in info.value.problems)


# --- the whole service --------------------------------------------------------------------


async def test_spa_start_next_stop_through_the_service(
    tmp_path: Path, mosquitto: Mosquitto, fake: FakeZigbee2Mqtt
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}
devices: {{retry_initial: 0.02, retry_max: 0.1, poll_interval: 600, settle_timeout: 0.5}}
rooms:
  bedroom:
    routine: timed
    lights:
      backend: zigbee2mqtt
      group: bedroom
      lights: [bed-left, bed-right, ceiling, lamp]
"""
    )
    settings = load_settings(path, data_dir=tmp_path)
    core = Ambiance(settings, clock=FakeClock(), library=make_library())
    before = fake.exact_states()
    async with core:
        room = core.room("bedroom")
        assert room.lights.backend.kind == "zigbee2mqtt"
        assert await room.lights.wait_synced(TIMEOUT)
        fake.clear()

        room.start_spa()  # stage a, scene "dim": 2200 K, 20 %, 2 s
        assert await room.lights.wait_synced(TIMEOUT)
        assert [(c.entity, c.payload) for c in fake.sets()] == [
            ("bedroom", {"state": "ON", "brightness": 51, "color_temp": 455, "transition": 2})
        ]
        view = room.view().model_dump(mode="json")["lights"]
        assert {(x["on"], x["brightness"]) for x in view["lights"]} == {(True, 20.1)}

        room.next()  # stage b, scene "dark": 2000 K, 5 %, 3 s
        assert await room.lights.wait_synced(TIMEOUT)
        assert [c.entity for c in fake.sets()] == ["bedroom", "bedroom"]
        assert fake.sets()[-1].payload == {
            "state": "ON",
            "brightness": 13,
            "color_temp": 500,
            "transition": 3,
        }
        assert fake.light("bed-left").color_temp == 454

        room.stop_session()  # put back over the routine's restore_transition (1 s)
        assert await room.lights.wait_synced(TIMEOUT)
        assert fake.exact_states() == before
        assert not room.degraded
        assert [c.entity for c in fake.sets()].count("bedroom") == 2  # restore is per light
        view = room.view().model_dump(mode="json")["lights"]
        ceiling = next(x for x in view["lights"] if x["name"] == "ceiling")
        assert (ceiling["on"], ceiling["brightness"]) == (False, 70.9)


# --- state that is not valid --------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "valid"),
    [
        (
            {"state": "ON", "brightness": 1e308, "color_temp": -5},
            {"state": "ON"},
        ),
        ({"state": 5}, {}),
        ({"state": "TOGGLE", "brightness": 255}, {}),
        (
            {"state": "off", "brightness": 0, "color_temp": 50},
            {"state": "OFF", "brightness": 0, "color_temp": 50},
        ),
        ({"brightness": True, "color_temp": 370.5, "color_mode": "rgb"}, {}),
        ({"brightness": "200", "color_temp": 1001, "linkquality": 80}, {}),
        (
            {"color_mode": "xy", "color": {"x": 0.3, "y": 0.4, "h": 7}},
            {"color_mode": "xy", "color": {"x": 0.3, "y": 0.4}},
        ),
        ({"color": {"x": 1.5, "y": 0.4}}, {}),
        ({"color": {"hue": 400, "saturation": 50}}, {}),
        ({"color": {"hue": 30, "saturation": 80.5}}, {"color": {"hue": 30, "saturation": 80.5}}),
        ({"color": {"x": float("nan"), "y": 0.4}}, {}),
        ({"color": "red"}, {}),
        ({"state": None, "brightness": None}, {}),  # null: not said
    ],
)
def test_a_light_report_keeps_only_its_valid_fields(
    report: dict[str, Any], valid: dict[str, Any]
) -> None:
    assert Reports(LightReport, "zigbee2mqtt").valid("bulb2", report) == valid


def test_each_bad_field_is_said_once_per_light(caplog: pytest.LogCaptureFixture) -> None:
    reports = Reports(LightReport, "zigbee2mqtt")
    for _ in range(3):
        reports.valid("bulb2", {"state": "ON", "brightness": 1e308, "color_temp": -5})
        reports.valid("bulb3", {"state": 5})
    said = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert len(said) == 3
    assert said[0].startswith("zigbee2mqtt: bulb2 sent brightness 1e+308, which is not valid")
    assert "color_temp -5" in said[1] and "greater than or equal to 50" in said[1]
    assert "bulb3 sent state 5" in said[2]


async def test_bad_retained_states_are_neither_snapshotted_nor_restored(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Another program leaves bad retained states on two lights before a session: the
    session and its end send none of those values, and the light whose state became 5
    is not switched off at the end (it was on)."""
    bulbs = ["bulb1", "bulb2", "bulb3"]
    lights = [FakeLight(name, brightness=200, color_temp=370) for name in bulbs]
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
mqtt: {{host: 127.0.0.1, port: {mosquitto.port}}}
devices: {{retry_initial: 0.02, retry_max: 0.1, poll_interval: 600}}
rooms:
  bedroom:
    routine: timed
    lights: {{backend: zigbee2mqtt, group: bedroom, lights: [bulb1, bulb2, bulb3]}}
"""
    )
    with FakeZigbee2Mqtt(mosquitto, lights, {"bedroom": bulbs}) as z2m:
        before = z2m.exact_states()
        core = Ambiance(
            load_settings(path, data_dir=tmp_path), clock=FakeClock(), library=make_library()
        )
        async with core:
            room = core.room("bedroom")
            backend = room.lights.backend
            assert isinstance(backend, Zigbee2MqttLights)
            await heard_all(backend)
            heard = dict(backend._reports)
            await asyncio.to_thread(
                publish,
                mosquitto,
                "zigbee2mqtt/bulb2",
                '{"state":"ON","brightness":1e308,"color_temp":-5}',
            )
            await asyncio.to_thread(publish, mosquitto, "zigbee2mqtt/bulb3", '{"state":5}')
            assert await backend._wait_until(
                lambda: all(backend._reports[n] > heard[n] for n in ("bulb2", "bulb3")), TIMEOUT
            )
            z2m.clear()

            room.start_spa()
            assert await room.settle(TIMEOUT)
            room.next()
            assert await room.settle(TIMEOUT)
            snapshot = room.lights.snapshot
            assert snapshot is not None
            assert {s.id: dict(s.state) for s in snapshot.lights}["bulb2"] == {
                "state": "ON",
                "brightness": 200,
                "color_temp": 370,
            }
            room.stop_session()
            assert await room.settle(TIMEOUT)

        sent = [c.payload for c in z2m.sets()]
        assert sent and all(isinstance(p, dict) for p in sent)
        assert all(0 <= p.get("brightness", 0) <= 254 for p in sent), sent
        assert all(p.get("color_temp", 153) >= 50 for p in sent), sent
        assert [p for p in (c.payload for c in z2m.sets("bulb3")) if p.get("state") == "OFF"] == []
        assert z2m.exact_states() == before


async def test_a_light_whose_on_off_is_unknown_is_not_switched_at_the_end(
    mosquitto: Mosquitto, conn: MqttConnection
) -> None:
    """All it ever said of its state is a bad retained message: on/off unknown, so the
    restore gives back its valid brightness and switches it neither on nor off."""
    lights = [FakeLight("bulb2", silent=True)]
    await asyncio.to_thread(
        publish, mosquitto, "zigbee2mqtt/bulb2", '{"state":5,"brightness":80,"color_temp":-5}'
    )
    with FakeZigbee2Mqtt(mosquitto, lights) as z2m:
        # It never answers a command either: wait only a moment for its echo.
        backend = Zigbee2MqttLights(
            conn, config(group=None, lights=["bulb2"]), sleep=Sleeps(), echo_wait=0.2
        )
        await backend.start()
        await heard_all(backend)
        [light] = await backend.read()
        assert (light.on, light.reachable) == (False, False)  # not known: not guessed
        snapshot = await backend.snapshot()
        assert dict(snapshot.lights[0].state) == {"brightness": 80}
        await backend.restore(snapshot, 1)
        await z2m.async_wait_for(lambda: bool(z2m.sets("bulb2")), what="the restore")
        assert [c.payload for c in z2m.sets("bulb2")] == [
            {"state": None, "brightness": 80, "transition": 1}
        ]
        await backend.stop()
