"""Home Assistant MQTT discovery against a real Mosquitto: the configs of each room's device,
retained for late subscribers, re-sent when Home Assistant says `online`, withdrawn when a
room leaves the config, and a command through the switch's own topic and payload.

Home Assistant is not here, so its side is checked two ways: the config JSON is compared
field by field (the templates as exact strings), and the templates are rendered with Jinja2
as Home Assistant renders them (`render()` below) against the real state messages the
service publishes; `timestamp_sensor()` then does what Home Assistant's MQTT sensor does
with the result.

Nothing sleeps: every wait is for a message at a test subscriber, with a timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ambiance import __version__
from ambiance.config import RoomConfig, Settings
from ambiance.doors.discovery import RECORD_FILE, node_id
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.helpers import make_library
from tests.mosquitto import Mosquitto, Received, Subscriber, async_read_retained
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0
PREFIX = "homeassistant"
# (component, object_id) of every entity of a room.
ENTITIES = [
    ("switch", "spa_mode"),
    ("select", "stage"),
    ("button", "next"),
    ("button", "previous"),
    ("button", "pause_resume"),
    ("button", "checkin_softer"),
    ("button", "checkin_same"),
    ("button", "checkin_firmer"),
    ("button", "checkin_too_much"),
    ("sensor", "current_stage"),
    ("sensor", "checkin"),
    ("sensor", "stage_ends"),
    ("sensor", "session_ends"),
    ("sensor", "status"),
    ("binary_sensor", "devices"),
]
BOTH_ROOMS = {
    "bedroom": RoomConfig(title="Bedroom", routine="quick"),
    # A dash and no title: the node id keeps the dash, the entity id cannot, the title is made.
    "living-room": RoomConfig(routine="timed"),
}


def config_topic(room: str, component: str, object_id: str) -> str:
    return f"{PREFIX}/{component}/ambiance_{room}/{object_id}/config"


def config_topics(*rooms: str) -> set[str]:
    return {config_topic(room, c, o) for room in rooms for c, o in ENTITIES}


def make_core(broker: Mosquitto, data_dir: Path, rooms: dict[str, RoomConfig]) -> Ambiance:
    settings = Settings(data_dir=data_dir, rooms=rooms, mqtt=mqtt_settings(broker))
    return Ambiance(settings, clock=FakeClock(), library=make_library())


def newer_than(seen: Iterable[Received]) -> Callable[[Received], bool]:
    """A predicate for messages that arrived after `seen` was taken (by identity)."""
    old = {id(m) for m in seen}
    return lambda m: id(m) not in old


async def wait_all(
    live: Subscriber,
    topics: Iterable[str],
    payload: bytes | None = None,
    predicate: Callable[[Received], bool] | None = None,
) -> dict[str, Received]:
    return {
        topic: await live.async_wait_for(topic, payload, timeout=TIMEOUT, predicate=predicate)
        for topic in sorted(topics)
    }


# Home Assistant renders templates in an immutable Jinja sandbox and strips the result. An
# undefined name would be a "Template variable warning" in its log: here it is an error.
JINJA = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)


def render(template: str, **variables: Any) -> str:
    """Render a template as Home Assistant does (`value_json`: the decoded state message)."""
    return JINJA.from_string(template).render(**variables).strip()


# What Home Assistant's MQTT sensor takes as "unknown" (mqtt/const.py PAYLOAD_NONE).
PAYLOAD_NONE = "None"


def timestamp_sensor(
    config: dict[str, Any], message: dict[str, Any], *, version: tuple[int, int]
) -> tuple[str, list[str]]:
    """What Home Assistant `version` shows for a timestamp MQTT sensor given a state message
    (`unavailable`, `unknown` or the timestamp), and the warnings it logs.

    Its rule (homeassistant/components/mqtt/sensor.py, `_update_state`): the rendered value
    "None" is unknown; before 2024.10 only for numeric sensors, so a timestamp sensor then
    parses it as a date and warns `Invalid state message '<payload>'` (core PR #127032 moved
    the check first). Text that is not a timestamp with a time zone warns in every version.
    Availability (mixins.py): each availability topic's template renders payload_available
    or payload_not_available (anything else changes nothing); with `availability_mode: all`
    every topic must say available. Here the service's status topic says `online`."""
    warnings: list[str] = []
    available = True
    for entry in config.get("availability", []):
        if entry["topic"] != config["state_topic"]:
            continue  # the service's status: online
        said = render(entry["value_template"], value_json=message, value=json.dumps(message))
        assert said in (entry["payload_available"], entry["payload_not_available"]), said
        available = available and said == entry["payload_available"]
    assert config.get("availability_mode", "all") == "all" or "availability" not in config
    rendered = render(config["value_template"], value_json=message, value=json.dumps(message))
    value: str
    if rendered == PAYLOAD_NONE and version >= (2024, 10):
        value = "unknown"
    else:
        try:
            parsed = datetime.fromisoformat(rendered)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            warnings.append(f"Invalid state message '{json.dumps(message)}'")
            value = "unknown"
        else:
            value = parsed.isoformat()
    return ("unavailable" if not available else value), warnings


@pytest.fixture
async def live(mosquitto: Mosquitto) -> AsyncIterator[Subscriber]:
    """A subscriber that sees everything the service and Home Assistant would exchange."""
    with Subscriber(mosquitto, f"{PREFIX}/#", "ambiance/#") as subscriber:
        yield subscriber


# --- the configs ---------------------------------------------------------------------


async def test_each_room_is_one_device_with_its_entities(
    mosquitto: Mosquitto, live: Subscriber, tmp_path: Path
) -> None:
    async with make_core(mosquitto, tmp_path, BOTH_ROOMS):
        received = await wait_all(live, config_topics("bedroom", "living-room"))

    configs = {topic: json.loads(m.payload) for topic, m in received.items()}
    assert all(m.qos == 1 for m in received.values())  # retained: checked at the end
    # Nothing else under the prefix: exactly these entities.
    assert {m.topic for m in live.matching(f"{PREFIX}/+/+/+/config")} == set(configs)

    for room, title in [("bedroom", "Bedroom"), ("living-room", "Living Room")]:
        node = f"ambiance_{room}"
        assert node == node_id("ambiance", room)
        for component, object_id in ENTITIES:
            config = configs[config_topic(room, component, object_id)]
            assert config["unique_id"] == f"{node}_{object_id}"
            slug = node.replace("-", "_")
            assert config["default_entity_id"] == f"{component}.{slug}_{object_id}"
            assert config["device"] == {
                "identifiers": [node],
                "name": f"ambiance {title}",
                "manufacturer": "ambiance",
                "model": "Spa mode",
                "sw_version": __version__,
                "suggested_area": title,
            }
            assert config["origin"] == {"name": "ambiance", "sw_version": __version__}
            service_status = {
                "topic": "ambiance/status",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
            if "availability" in config:  # the end times: also the state's own (below)
                assert config["availability"][0] == service_status
                assert config["availability_mode"] == "all"
                assert "availability_topic" not in config  # Home Assistant: one or the other
            else:
                assert config["availability_topic"] == service_status["topic"]
                assert config["payload_available"] == service_status["payload_available"]
                assert config["payload_not_available"] == "offline"
            assert config["qos"] == 1
            assert config["name"]
            if "command_topic" in config:
                assert config["command_topic"] == f"ambiance/{room}/cmd"
            if "state_topic" in config:
                assert config["state_topic"] == f"ambiance/{room}/state"
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))

    # One room in full: what Home Assistant does with each entity.
    def bedroom(component: str, object_id: str) -> dict[str, Any]:
        config = dict(configs[config_topic("bedroom", component, object_id)])
        for common in (
            "unique_id",
            "default_entity_id",
            "device",
            "origin",
            "availability_topic",
            "payload_available",
            "payload_not_available",
            "qos",
        ):
            config.pop(common, None)
        return config

    state, cmd = "ambiance/bedroom/state", "ambiance/bedroom/cmd"
    assert bedroom("switch", "spa_mode") == {
        "name": "Spa mode",
        "icon": "mdi:spa",
        "command_topic": cmd,
        "payload_on": '{"action":"start"}',
        "payload_off": '{"action":"stop"}',
        "state_topic": state,
        "value_template": "{{ 'ON' if value_json.status in ('running', 'paused') else 'OFF' }}",
        "state_on": "ON",
        "state_off": "OFF",
    }
    assert bedroom("select", "stage") == {
        "name": "Stage",
        "icon": "mdi:format-list-numbered",
        "command_topic": cmd,
        "command_template": '{"action":"goto","stage":"{{ value }}"}',
        "options": ["prepare", "a", "b", "c"],  # the room's default routine, `quick`
        "state_topic": state,
        "value_template": "{{ value_json.stage or 'None' }}",
    }
    # The room's default routine first, then the other routines' stages.
    assert configs[config_topic("living-room", "select", "stage")]["options"] == [
        "a",
        "b",
        "c",
        "prepare",
    ]
    for object_id, name, icon, action in [
        ("next", "Next", "mdi:skip-next", "next"),
        ("previous", "Previous", "mdi:skip-previous", "previous"),
        ("pause_resume", "Pause/resume", "mdi:play-pause", "toggle_pause"),
    ]:
        assert bedroom("button", object_id) == {
            "name": name,
            "icon": icon,
            "command_topic": cmd,
            "payload_press": json.dumps({"action": action}, separators=(",", ":")),
        }
    assert bedroom("sensor", "current_stage") == {
        "name": "Current stage",
        "icon": "mdi:spa-outline",
        "state_topic": state,
        "value_template": "{{ value_json.stage_title or 'idle' }}",
    }
    # Available only while the end is known (the service's status first, checked above).
    ends_known = {
        "availability": [
            {
                "topic": "ambiance/status",
                "payload_available": "online",
                "payload_not_available": "offline",
            },
            {
                "topic": state,
                "value_template": "{{ 'online' if value_json.status == 'running' "
                "and value_json.stage_ends_at else 'offline' }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            },
        ],
        "availability_mode": "all",
    }
    assert bedroom("sensor", "stage_ends") == {
        "name": "Stage ends",
        "icon": "mdi:timer-sand",
        "device_class": "timestamp",
        "state_topic": state,
        "value_template": "{{ value_json.stage_ends_at if value_json.status == 'running' "
        "and value_json.stage_ends_at else value_json.at }}",
        **ends_known,
    }
    assert bedroom("sensor", "session_ends") == {
        "name": "Session ends",
        "icon": "mdi:timer-outline",
        "device_class": "timestamp",
        "state_topic": state,
        "value_template": "{{ value_json.ends_at if value_json.status == 'running' "
        "and value_json.stage_ends_at else value_json.at }}",
        **ends_known,
    }
    assert bedroom("sensor", "status") == {
        "name": "Status",
        "icon": "mdi:information-outline",
        "device_class": "enum",
        "options": ["idle", "running", "paused"],
        "state_topic": state,
        "value_template": "{{ value_json.status }}",
        "json_attributes_topic": state,
    }
    assert bedroom("binary_sensor", "devices") == {
        "name": "Devices",
        "device_class": "problem",
        "entity_category": "diagnostic",
        "state_topic": state,
        "value_template": "{{ 'ON' if value_json.health == 'degraded' else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
    }

    # Retained: a Home Assistant that connects later (after the service stopped, even)
    # still finds every entity.
    retained = await async_read_retained(mosquitto, f"{PREFIX}/#")
    assert retained == {topic: m.payload for topic, m in received.items()}


async def test_published_again_when_home_assistant_comes_online(
    mosquitto: Mosquitto, live: Subscriber, tmp_path: Path
) -> None:
    topics = config_topics("bedroom", "living-room")
    async with make_core(mosquitto, tmp_path, BOTH_ROOMS):
        first = await wait_all(live, topics)
        # `offline` (Home Assistant's last will) asks for nothing; `online` (its birth
        # message after a restart) gets every config again.
        before = list(live.messages)
        live.publish(f"{PREFIX}/status", "offline")
        live.publish(f"{PREFIX}/status", "online")
        again = await wait_all(live, topics, predicate=newer_than(before))
    assert {t: m.payload for t, m in again.items()} == {t: m.payload for t, m in first.items()}
    # Messages keep their order: had `offline` caused a round, it would have come first.
    for topic in topics:
        assert len(live.matching(topic)) == 2


# --- removal -------------------------------------------------------------------------


async def test_a_room_removed_from_the_config_is_removed_from_home_assistant(
    mosquitto: Mosquitto, live: Subscriber, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with make_core(mosquitto, data_dir, BOTH_ROOMS):
        await wait_all(live, config_topics("bedroom", "living-room"))
        await wait_all(live, ["ambiance/bedroom/state", "ambiance/living-room/state"])
    record = json.loads((data_dir / RECORD_FILE).read_text())
    assert set(record["configs"]) == config_topics("bedroom", "living-room")
    assert set(record["states"]) == {"ambiance/bedroom/state", "ambiance/living-room/state"}

    before = list(live.messages)
    async with make_core(mosquitto, data_dir, {"bedroom": BOTH_ROOMS["bedroom"]}):
        # An empty retained config is how Home Assistant is told to delete an entity.
        await wait_all(live, config_topics("living-room"), b"", predicate=newer_than(before))
        await live.async_wait_for(
            "ambiance/living-room/state", b"", timeout=TIMEOUT, predicate=newer_than(before)
        )
        await wait_all(live, config_topics("bedroom"), predicate=newer_than(before))

        retained = await async_read_retained(mosquitto, f"{PREFIX}/#")
        assert set(retained) == config_topics("bedroom")
        states = await async_read_retained(mosquitto, "ambiance/+/state")
        assert set(states) == {"ambiance/bedroom/state"}

    record = json.loads((data_dir / RECORD_FILE).read_text())
    assert set(record["configs"]) == config_topics("bedroom")
    assert record["states"] == ["ambiance/bedroom/state"]
    assert not list(data_dir.glob(".discovery.*"))  # no temp file left behind


@pytest.mark.parametrize(
    "text",
    [
        '{"configs": ["homeassistant/#", 3',
        # Valid, but over the 1 MiB that a record of every room's topics could need.
        json.dumps({"configs": [], "states": [], "pad": "x" * (1 << 20)}),
    ],
    ids=["cut short", "too large"],
)
async def test_a_damaged_record_is_replaced_and_does_not_stop_discovery(
    mosquitto: Mosquitto,
    live: Subscriber,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    (tmp_path / RECORD_FILE).write_text(text)
    caplog.set_level(logging.WARNING, logger="ambiance.doors.discovery")
    async with make_core(mosquitto, tmp_path, {"bedroom": BOTH_ROOMS["bedroom"]}):
        await wait_all(live, config_topics("bedroom"))
    assert "cannot read" in caplog.text
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert set(record["configs"]) == config_topics("bedroom")


async def test_without_a_broker_nothing_is_published_or_recorded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": BOTH_ROOMS["bedroom"]})
    async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
        assert core.discovery.configs()  # what would be published
    assert not (tmp_path / RECORD_FILE).exists()


# --- round trip ----------------------------------------------------------------------


async def test_the_entities_drive_the_room_through_the_broker(
    mosquitto: Mosquitto, live: Subscriber, tmp_path: Path
) -> None:
    def config(component: str, object_id: str) -> dict[str, Any]:
        message = live.matching(config_topic("bedroom", component, object_id))[-1]
        result: dict[str, Any] = json.loads(message.payload)
        return result

    sent: list[Received] = []  # what had arrived when the last command was sent

    async def state_where(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first state message since the last command that passes `check`."""
        is_new = newer_than(sent)
        message = await live.async_wait_for(
            "ambiance/bedroom/state",
            timeout=TIMEOUT,
            predicate=lambda m: is_new(m) and bool(m.payload) and check(json.loads(m.payload)),
        )
        result: dict[str, Any] = json.loads(message.payload)
        return result

    def shown(component: str, object_id: str, state: dict[str, Any]) -> str:
        """What Home Assistant would show for the entity, given a state message."""
        return render(config(component, object_id)["value_template"], value_json=state)

    def ends(object_id: str, state: dict[str, Any]) -> str:
        """What Home Assistant shows for an end-time sensor, the same in 2024.3 (the last
        release for Python 3.11) and after 2024.10; neither may log a warning."""
        shown = set()
        for version in [(2024, 3), (2025, 1)]:
            value, warnings = timestamp_sensor(config("sensor", object_id), state, version=version)
            assert warnings == [], (version, warnings)
            shown.add(value)
        [value] = shown
        return value

    def press(component: str, object_id: str, key: str = "payload_press", **values: Any) -> None:
        entity = config(component, object_id)
        payload = render(entity[key], **values) if values else entity[key]
        sent[:] = live.messages
        live.publish(entity["command_topic"], payload, qos=1)

    async with make_core(mosquitto, tmp_path, {"bedroom": BOTH_ROOMS["bedroom"]}):
        await wait_all(live, config_topics("bedroom"))
        idle = await state_where(lambda s: s["status"] == "idle")
        assert shown("switch", "spa_mode", idle) == "OFF"
        assert shown("select", "stage", idle) == "None"  # Home Assistant: unknown
        assert shown("sensor", "current_stage", idle) == "idle"
        assert ends("stage_ends", idle) == "unavailable"  # no end: nothing to count down
        assert ends("session_ends", idle) == "unavailable"
        assert shown("sensor", "status", idle) == "idle"
        assert shown("binary_sensor", "devices", idle) == "OFF"

        # Turning the switch on in Home Assistant sends payload_on to command_topic.
        press("switch", "spa_mode", "payload_on")
        running = await state_where(lambda s: s["status"] == "running")
        assert shown("switch", "spa_mode", running) == "ON"
        assert shown("select", "stage", running) == "prepare"
        assert shown("sensor", "current_stage", running) == "prepare"
        # `prepare` waits for "ready": no end is known yet.
        assert ends("stage_ends", running) == "unavailable"
        assert ends("session_ends", running) == "unavailable"

        # Choosing an option in the select renders its command_template with `value`.
        press("select", "stage", "command_template", value="b")
        in_b = await state_where(lambda s: s["stage"] == "b")
        assert shown("select", "stage", in_b) == "b"
        stage_ends = datetime.fromisoformat(ends("stage_ends", in_b))
        session_ends = datetime.fromisoformat(ends("session_ends", in_b))
        assert stage_ends == datetime.fromisoformat(in_b["stage_ends_at"])
        assert stage_ends.tzinfo is not None  # Home Assistant needs a timezone
        assert (session_ends - stage_ends).total_seconds() == 30  # stage c is left

        press("button", "next")
        await state_where(lambda s: s["stage"] == "c")
        press("button", "previous")
        await state_where(lambda s: s["stage"] == "b" and s["stage_remaining"] == 120)

        press("button", "pause_resume")
        paused = await state_where(lambda s: s["status"] == "paused")
        assert shown("switch", "spa_mode", paused) == "ON"  # a paused session is still on
        assert shown("sensor", "status", paused) == "paused"
        assert ends("stage_ends", paused) == "unavailable"  # nothing ends while paused
        assert ends("session_ends", paused) == "unavailable"
        press("button", "pause_resume")
        await state_where(lambda s: s["status"] == "running")

        press("switch", "spa_mode", "payload_off")
        ended = await state_where(lambda s: s["status"] == "idle")
        assert shown("switch", "spa_mode", ended) == "OFF"
        # Every command was accepted: none came back on the error topic.
        assert not live.matching("ambiance/bedroom/error")
