"""A fake Zigbee2MQTT: a separate paho client on the test broker that owns a few lights and
groups and answers like Zigbee2MQTT does.

- `<base>/<name>/set` on a light or a group changes the state as Zigbee2MQTT's converters
  (zigbee-herdsman-converters' light_onoff_brightness, light_colortemp, light_color) do:
  a group command reaches every member, each clamping `color_temp` into its own range;
  `brightness` without `state` switches on (0: off); `"state": null` changes the level
  only; an OFF drops a non-zero brightness, and with a `transition` reports brightness 0;
- after each command every light it reached publishes its whole state JSON on
  `<base>/<light>` (retained unless `retain=False`), and a group publishes on `<base>/<group>`;
- `<base>/<name>/get` publishes the state again;
- `<base>/<light>/availability` and `<base>/bridge/state` say `{"state": "online"}`
  (retained); the bridge's last will and `stop()` say offline.

Every command is recorded (`commands`), so tests can count publishes. `stop()` and `start()`
take it away and bring it back; a `silent` light publishes nothing until `report()`.
Waiting is on a condition variable with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.mosquitto import Mosquitto

TIMEOUT = 5.0


@dataclass
class FakeLight:
    name: str
    mired_min: int = 153
    mired_max: int = 500
    state: str = "ON"
    brightness: int = 200
    color_temp: int = 370
    color_mode: str = "color_temp"
    color: dict[str, float] = field(default_factory=lambda: {"x": 0.4596, "y": 0.4105})
    available: bool = True
    silent: bool = False  # publishes no state and answers nothing until `report()`
    transition: float | None = None  # the last transition it was given

    def payload(self) -> dict[str, Any]:
        """The state JSON as Zigbee2MQTT publishes it: both colour forms are always there
        (color_sync); only `color_mode` says which one the light shows."""
        return {
            "brightness": self.brightness,
            "color": dict(self.color),
            "color_mode": self.color_mode,
            "color_temp": self.color_temp,
            "linkquality": 141,
            "state": self.state,
        }

    def exact(self) -> dict[str, Any]:
        """On/off, brightness, and the colour of its mode: what an exact restore restores."""
        colour: Any = self.color_temp if self.color_mode == "color_temp" else dict(self.color)
        return {
            "state": self.state,
            "brightness": self.brightness,
            "mode": self.color_mode,
            "colour": colour,
        }


@dataclass(frozen=True)
class Command:
    topic: str
    entity: str  # a light's or a group's friendly name
    action: str  # "set" or "get"
    payload: Any  # the decoded JSON (None when it was not JSON)


def _is_json_null(message: dict[str, Any], key: str) -> bool:
    return key in message and message[key] is None


class FakeZigbee2Mqtt:
    def __init__(
        self,
        broker: Mosquitto,
        lights: list[FakeLight],
        groups: dict[str, list[str]] | None = None,
        *,
        base_topic: str = "zigbee2mqtt",
        retain: bool = True,
    ) -> None:
        self.broker = broker
        self.base = base_topic
        self.lights = {light.name: light for light in lights}
        self.groups = dict(groups or {})
        self.retain = retain
        self.commands: list[Command] = []
        self._changed = threading.Condition()
        self._subscribed = False
        self._client: mqtt.Client | None = None

    # --- life cycle ------------------------------------------------------------------

    def start(self, timeout: float = TIMEOUT) -> FakeZigbee2Mqtt:
        """Connect; return once subscribed and the bridge, availability and states are out."""
        client = self.broker.client(f"fake-z2m-{uuid.uuid4().hex[:8]}")
        client.will_set(self._bridge_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
        client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # seconds, floats work
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        with self._changed:
            self._subscribed = False
        self._client = client
        client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        client.loop_start()
        self.wait_for(lambda: self._subscribed, timeout, "the fake Zigbee2MQTT to subscribe")
        return self

    def stop(self) -> None:
        """Go away as Zigbee2MQTT does on shutdown: say offline (retained), disconnect."""
        client, self._client = self._client, None
        if client is None:
            return
        if client.is_connected():
            info = client.publish(
                self._bridge_topic, json.dumps({"state": "offline"}), qos=1, retain=True
            )
            info.wait_for_publish(TIMEOUT)
        client.disconnect()
        client.loop_stop()

    def __enter__(self) -> FakeZigbee2Mqtt:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def _bridge_topic(self) -> str:
        return f"{self.base}/bridge/state"

    # --- what tests use --------------------------------------------------------------

    def light(self, name: str) -> FakeLight:
        return self.lights[name]

    def exact_states(self) -> dict[str, dict[str, Any]]:
        with self._changed:
            return {name: light.exact() for name, light in self.lights.items()}

    def sets(self, entity: str | None = None) -> list[Command]:
        with self._changed:
            return [
                c
                for c in self.commands
                if c.action == "set" and (entity is None or c.entity == entity)
            ]

    def gets(self, entity: str | None = None) -> list[Command]:
        with self._changed:
            return [
                c
                for c in self.commands
                if c.action == "get" and (entity is None or c.entity == entity)
            ]

    def clear(self) -> None:
        with self._changed:
            self.commands.clear()

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "a condition"
    ) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"waited {timeout} s for {what}; commands: "
                    f"{[(c.topic, c.payload) for c in self.commands]}"
                )

    async def async_wait_for(
        self, predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "a condition"
    ) -> None:
        await asyncio.to_thread(self.wait_for, predicate, timeout, what)

    def change(self, name: str, **attributes: Any) -> None:
        """Change a light by hand (a wall switch, the Zigbee2MQTT front end) and publish."""
        with self._changed:
            light = self.lights[name]
            for key, value in attributes.items():
                setattr(light, key, value)
            self._publish_state(light)

    def report(self, name: str) -> None:
        """A silent light starts talking: it publishes its state now and answers from now on."""
        self.change(name, silent=False)

    def set_available(self, name: str, available: bool) -> None:
        with self._changed:
            self.lights[name].available = available
            self._publish_availability(self.lights[name])

    # --- paho's thread ---------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            return
        client.subscribe([(f"{self.base}/+/set", 1), (f"{self.base}/+/get", 1)])
        client.publish(self._bridge_topic, json.dumps({"state": "online"}), qos=1, retain=True)
        with self._changed:
            for light in self.lights.values():
                self._publish_availability(light)
                self._publish_state(light)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._changed:
            self._subscribed = True
            self._changed.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        rest = message.topic.removeprefix(f"{self.base}/")
        entity, _, action = rest.rpartition("/")
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = None
        with self._changed:
            self.commands.append(Command(message.topic, entity, action, payload))
            if isinstance(payload, dict):
                if action == "set":
                    self._set(entity, payload)
                elif action == "get":
                    self._get(entity)
            self._changed.notify_all()

    # --- Zigbee2MQTT's behaviour (called with the lock held) -------------------------

    def _members(self, entity: str) -> list[FakeLight] | None:
        if entity in self.lights:
            return [self.lights[entity]]
        if entity in self.groups:
            return [self.lights[name] for name in self.groups[entity]]
        return None  # Zigbee2MQTT logs "Entity '...' is unknown" and does nothing

    def _set(self, entity: str, message: dict[str, Any]) -> None:
        members = self._members(entity)
        if members is None:
            return
        for light in members:
            if light.silent:
                continue
            self._apply(light, message)
            self._publish_state(light)
        if entity in self.groups:
            self._publish_group(entity)

    def _apply(self, light: FakeLight, message: dict[str, Any]) -> None:
        if "transition" in message:
            light.transition = float(message["transition"])
        # Colour: set even while off (Zigbee2MQTT reports what it sent; with state OFF it
        # sends the colour first, while the light is still on).
        if "color_temp" in message:
            light.color_temp = max(
                light.mired_min, min(light.mired_max, round(message["color_temp"]))
            )
            light.color_mode = "color_temp"
        colour = message.get("color")
        if isinstance(colour, dict):
            if "x" in colour and "y" in colour:
                light.color = {"x": float(colour["x"]), "y": float(colour["y"])}
                light.color_mode = "xy"
            elif "hue" in colour and "saturation" in colour:
                light.color = {
                    "hue": float(colour["hue"]),
                    "saturation": float(colour["saturation"]),
                }
                light.color_mode = "hs"
        # State and brightness, as light_onoff_brightness does it.
        brightness = message.get("brightness")
        if _is_json_null(message, "state"):
            # Move to Level without On/Off: the level only, never switching.
            if brightness is not None:
                light.brightness = max(1, min(254, int(brightness)))
            return
        state = message.get("state")
        if state is None:
            if brightness is None:
                return  # a colour-only command
            state = "OFF" if brightness == 0 else "ON"
        state = str(state).upper()
        if state == "TOGGLE":
            state = "OFF" if light.state == "ON" else "ON"
        if state == "OFF":
            light.state = "OFF"
            # A brightness given with OFF is dropped; with a transition (or 0) it becomes a
            # move to level 0, and the published brightness is 0.
            if brightness is not None and ("transition" in message or brightness == 0):
                light.brightness = 0
        elif state == "ON":
            light.state = "ON"
            if brightness is not None:
                light.brightness = max(1, min(254, int(brightness)))

    def _get(self, entity: str) -> None:
        if entity in self.lights:
            self._publish_state(self.lights[entity])
        elif entity in self.groups:
            self._publish_group(entity)

    def _publish_state(self, light: FakeLight) -> None:
        if light.silent or self._client is None:
            return
        self._client.publish(
            f"{self.base}/{light.name}", json.dumps(light.payload()), qos=1, retain=self.retain
        )

    def _publish_availability(self, light: FakeLight) -> None:
        if self._client is None:
            return
        payload = json.dumps({"state": "online" if light.available else "offline"})
        self._client.publish(f"{self.base}/{light.name}/availability", payload, qos=1, retain=True)

    def _publish_group(self, group: str) -> None:
        if self._client is None:
            return
        members = [self.lights[name] for name in self.groups[group]]
        state = "ON" if any(m.state == "ON" for m in members) else "OFF"
        self._client.publish(
            f"{self.base}/{group}", json.dumps({"state": state}), qos=1, retain=self.retain
        )
