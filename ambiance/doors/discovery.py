"""Home Assistant MQTT discovery: each room appears in Home Assistant as one device.

Home Assistant builds entities from retained JSON configs on
`<prefix>/<component>/<node_id>/<object_id>/config` (prefix `homeassistant` by default). The
entities hold no logic of their own: they point at the MQTT door (mqtt_api.py) — commands go
to `<base>/<room>/cmd`, states are read with templates from the retained
`<base>/<room>/state` — so Home Assistant and every other client see one and the same room.

When: at start, and whenever Home Assistant says `online` on `<prefix>/status` (its birth
message after a restart; re-sending is what Home Assistant asks integrations to do). After a
reconnection the connection itself publishes every retained message of ours again, these
configs with them (a broker that restarted empty gets them back).

Removal: the config topics published last time are kept in `<data_dir>/discovery.json`. A
topic that is no longer published (its room left the config, or the base topic or prefix
changed) gets an empty retained message, which makes Home Assistant delete the entity; the
room's retained state is cleared the same way. Without the record the service could not
know what it published before it was restarted.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambiance.core import commands
from ambiance.core.status import RoomStatus
from ambiance.infra.files import MiB
from ambiance.infra.jsonfile import read_json, write_json_atomic
from ambiance.infra.mqtt import OFFLINE, ONLINE, Message, MqttConnection

if TYPE_CHECKING:
    from ambiance.core.facade import Core
    from ambiance.core.room import Room

log = logging.getLogger(__name__)

RECORD_FILE = "discovery.json"
RECORD_MAX_BYTES = 1 * MiB  # the topics published, a few hundred bytes a room
RECORD_VERSION = 1
MANUFACTURER = "ambiance"
MODEL = "Spa mode"

# The state templates, Jinja as Home Assistant renders it with `value_json` = the room's
# state message (Room.state_message). "None" is the word Home Assistant's MQTT sensor and
# select take for "unknown"; an empty rendering would be ignored and keep a stale value.
SWITCH_STATE = "{{ 'ON' if value_json.status in ('running', 'paused') else 'OFF' }}"
SELECT_STATE = "{{ value_json.stage or 'None' }}"
STAGE_TITLE = "{{ value_json.stage_title or 'idle' }}"
# Home Assistant counts a timestamp down by itself. While idle or paused nothing ends (a
# paused message's end times would be "now + what is left" and go stale), and during an
# untimed stage (`prepare` waits for "ready") no end is known. A timestamp sensor cannot
# show that as unknown without a warning before Home Assistant 2024.10: its MQTT sensor
# takes "None" as unknown only for numeric sensors, and logs any other text that is not a
# timestamp as "Invalid state message" with the whole state message (core PR #127032 moved
# the "None" check before the timestamp's in 2024.10). So with no end known the two sensors
# are unavailable, through a second availability topic, the state itself (ENDS_KNOWN), and
# render the message's own time `at` meanwhile, a timestamp every version takes silently
# and none shows (an unavailable entity shows no value).
ENDS_KNOWN = "value_json.status == 'running' and value_json.stage_ends_at"
ENDS_AVAILABLE = "{{ 'online' if " + ENDS_KNOWN + " else 'offline' }}"
STAGE_ENDS = "{{ value_json.stage_ends_at if " + ENDS_KNOWN + " else value_json.at }}"
SESSION_ENDS = "{{ value_json.ends_at if " + ENDS_KNOWN + " else value_json.at }}"
STATUS = "{{ value_json.status }}"
CHECKIN = (
    "{{ value_json.checkin.prompt if value_json.checkin and value_json.checkin.answered is none "
    "else 'None' }}"
)
PROBLEM = "{{ 'ON' if value_json.health == 'degraded' else 'OFF' }}"
STATUSES = [status.value for status in RoomStatus]


def _command(action: str, **arguments: str) -> str:
    """The MQTT door's command, by its name in the command table."""
    if commands.get(action) is None:
        raise ValueError(f"no command named {action!r}")
    return json.dumps({"action": action, **arguments}, separators=(",", ":"))


def _select_command() -> str:
    return _command("goto", stage="{{ value }}")  # Home Assistant fills in the option


def node_id(base_topic: str, room: str) -> str:
    """`ambiance_bedroom`: the base topic keeps two ambiance services on one broker apart.
    Home Assistant allows only [a-zA-Z0-9_-] in a discovery topic's node id."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", f"{base_topic}_{room}")


def _entity_slug(text: str) -> str:
    # Entity ids are lower case letters, digits and single underscores.
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class _Record:
    """What was published last time: retained topics that may need clearing later."""

    configs: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "configs": sorted(self.configs),
            "states": sorted(self.states),
        }


def _topics(value: Any) -> set[str]:
    # Only plain topics: a hand-edited or damaged file must not make us publish to a
    # wildcard (which paho refuses with ValueError) or an empty topic.
    if not isinstance(value, list):
        return set()
    return {t for t in value if isinstance(t, str) and t and "+" not in t and "#" not in t}


class Discovery:
    """Publishes (and withdraws) the Home Assistant entities of every room."""

    def __init__(self, core: Core, mqtt: MqttConnection) -> None:
        self.core = core
        self.mqtt = mqtt
        self._record = _Record()
        self._unsubscribers: list[Callable[[], None]] = []

    @property
    def prefix(self) -> str:
        return self.mqtt.settings.discovery_prefix

    @property
    def path(self) -> Path:
        return self.core.data_dir / RECORD_FILE

    @property
    def status_topic(self) -> str:
        """Where Home Assistant announces itself (`online` after a start)."""
        return f"{self.prefix}/status"

    async def start(self) -> None:
        if not self.mqtt.enabled:
            return
        self._record = self._load_record()
        self._unsubscribers = [self.mqtt.subscribe(self.status_topic, self._on_ha_status)]
        # Connected or not: the connection sends them once it is, and again after every
        # reconnection.
        self.publish_all()

    async def stop(self) -> None:
        # The entities stay: they go unavailable through the `offline` status, and come back
        # with the service. Removing them would lose the user's dashboards and automations.
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers = []

    # --- what is published --------------------------------------------------------------

    def configs(self) -> dict[str, dict[str, Any]]:
        """Every room's entity configs by discovery topic."""
        configs: dict[str, dict[str, Any]] = {}
        for room in self.core.rooms.values():
            configs.update(self.room_configs(room))
        return configs

    def room_configs(self, room: Room) -> dict[str, dict[str, Any]]:
        node = node_id(self.mqtt.settings.base_topic, room.name)
        version = self.core.version
        command_topic = self.mqtt.topic(room.name, "cmd")
        state_topic = self.mqtt.topic(room.name, "state")
        # The default routine's stages first, then any other routine's, so that a session
        # of another routine still shows a stage Home Assistant knows.
        stages = [stage.name for stage in room.library.routine(room.config.routine).stages]
        for routine in sorted(room.library.routines.values(), key=lambda r: r.name):
            stages += [s.name for s in routine.stages if s.name not in stages]
        # Shared by every entity of the room: the same identifiers make them one device.
        device = {
            "identifiers": [node],
            "name": f"ambiance {room.title}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": version,
            "suggested_area": room.title,
        }
        origin = {"name": "ambiance", "sw_version": version}

        # Our last will: when the service dies the entities show unavailable instead of a
        # state that is no longer true.
        service_status = {
            "availability_topic": self.mqtt.status_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
        }
        # Available while the service runs and the end is known (see ENDS_KNOWN).
        while_ends_known = {
            "availability": [
                {
                    "topic": self.mqtt.status_topic,
                    "payload_available": ONLINE,
                    "payload_not_available": OFFLINE,
                },
                {
                    "topic": state_topic,
                    "value_template": ENDS_AVAILABLE,
                    "payload_available": ONLINE,
                    "payload_not_available": OFFLINE,
                },
            ],
            "availability_mode": "all",
        }

        def entity(
            component: str,
            object_id: str,
            name: str,
            icon: str | None,
            availability: dict[str, Any] = service_status,
            **options: Any,
        ) -> tuple[str, dict[str, Any]]:
            config: dict[str, Any] = {
                "name": name,
                "unique_id": f"{node}_{object_id}",
                # Home Assistant 2025.10+. Older ones drop the key and derive the id from
                # the device and entity names, which gives the same id with the default
                # base topic and a room whose title is its name.
                "default_entity_id": f"{component}.{_entity_slug(f'{node}_{object_id}')}",
                "device": device,
                "origin": origin,
                **availability,
                # Commands at QoS 1, as the MQTT door expects; a lost "stop" matters.
                "qos": 1,
            }
            if icon is not None:
                config["icon"] = icon
            config.update(options)
            return f"{self.prefix}/{component}/{node}/{object_id}/config", config

        entities = [
            entity(
                "switch",
                "spa_mode",
                "Spa mode",
                "mdi:spa",
                command_topic=command_topic,
                payload_on=_command("start"),
                payload_off=_command("stop"),
                state_topic=state_topic,
                value_template=SWITCH_STATE,
                state_on="ON",
                state_off="OFF",
            ),
            entity(
                "select",
                "stage",
                "Stage",
                "mdi:format-list-numbered",
                command_topic=command_topic,
                command_template=_select_command(),
                options=stages,
                state_topic=state_topic,
                value_template=SELECT_STATE,
            ),
            # One button per button of the table (next, previous, pause/resume, the
            # check-in's answers).
            *(
                entity(
                    "button",
                    button.object_id,
                    button.name,
                    button.icon,
                    command_topic=command_topic,
                    payload_press=_command(command.name, **button.args),
                )
                for command in commands.table()
                for button in command.all_buttons
            ),
            # Named apart from the select "Stage", so the two read differently in lists.
            entity(
                "sensor",
                "current_stage",
                "Current stage",
                "mdi:spa-outline",
                state_topic=state_topic,
                value_template=STAGE_TITLE,
            ),
            # What the check-in asks now, for a speaker to say ("None" when none is open).
            entity(
                "sensor",
                "checkin",
                "Check-in",
                "mdi:account-voice",
                state_topic=state_topic,
                value_template=CHECKIN,
            ),
            entity(
                "sensor",
                "stage_ends",
                "Stage ends",
                "mdi:timer-sand",
                while_ends_known,
                device_class="timestamp",
                state_topic=state_topic,
                value_template=STAGE_ENDS,
            ),
            entity(
                "sensor",
                "session_ends",
                "Session ends",
                "mdi:timer-outline",
                while_ends_known,
                device_class="timestamp",
                state_topic=state_topic,
                value_template=SESSION_ENDS,
            ),
            entity(
                "sensor",
                "status",
                "Status",
                "mdi:information-outline",
                device_class="enum",
                options=STATUSES,
                state_topic=state_topic,
                value_template=STATUS,
                # The whole state message as attributes: templates and automations can read
                # the stage name, time left, scene or do-not-disturb without more entities.
                json_attributes_topic=state_topic,
            ),
            entity(
                "binary_sensor",
                "devices",
                "Devices",
                None,  # the `problem` device class brings its own icons for both states
                device_class="problem",
                entity_category="diagnostic",
                state_topic=state_topic,
                value_template=PROBLEM,
                payload_on="ON",
                payload_off="OFF",
            ),
        ]
        return dict(entities)

    def publish_all(self) -> None:
        """Publish every config, withdraw what is no longer published, update the record."""
        configs = self.configs()
        for topic, config in configs.items():
            self.mqtt.publish(topic, config, qos=1, retain=True)
        states = {self.mqtt.topic(name, "state") for name in self.core.rooms}
        record = _Record(set(configs), states)
        gone_configs = sorted(self._record.configs - record.configs)
        gone_states = sorted(self._record.states - record.states)
        # An empty retained payload deletes the retained message at the broker, and makes
        # Home Assistant remove the entity (and the device once it has none left).
        for topic in gone_configs:
            self.mqtt.publish(topic, None, qos=1, retain=True)
        for topic in gone_states:
            self.mqtt.publish(topic, None, qos=1, retain=True)
        if gone_configs or gone_states:
            log.info(
                "discovery: removed %d Home Assistant entities and %d room states "
                "that are no longer configured",
                len(gone_configs),
                len(gone_states),
            )
        log.info(
            "discovery: published %d Home Assistant entities under %s/",
            len(configs),
            self.prefix,
        )
        if record != self._record:
            self._save_record(record)
        self._record = record

    def _on_ha_status(self, message: Message) -> None:
        # A retained `online` (a birth message configured with retain) arrives on every
        # (re)subscription, right when the connection publishes the configs again anyway:
        # only a live one means Home Assistant has just (re)started.
        if message.retain or message.text.strip() != ONLINE:
            return
        log.info("discovery: Home Assistant is online; publishing the entities again")
        self.publish_all()

    # --- the record -----------------------------------------------------------------------

    def _load_record(self) -> _Record:
        path = self.path
        try:
            data = read_json(path, RECORD_MAX_BYTES, "the discovery record")
        except FileNotFoundError:
            return _Record()
        except ValueError as exc:  # too large, unreadable or not JSON
            # Not fatal: the entities are published as usual; only those of rooms removed
            # before now cannot be withdrawn (delete them in Home Assistant by hand).
            log.warning("discovery: cannot read the record (%s); starting a new record", exc)
            return _Record()
        if not isinstance(data, dict):
            log.warning("discovery: %s is not a JSON object; starting a new record", path)
            return _Record()
        return _Record(_topics(data.get("configs")), _topics(data.get("states")))

    def _save_record(self, record: _Record) -> None:
        path = self.path
        try:
            write_json_atomic(path, record.as_json())
        except OSError as exc:
            # The entities are published all the same; what is lost is the ability to
            # withdraw them after a later restart without this room.
            log.warning("discovery: cannot write %s: %s", path, exc)
