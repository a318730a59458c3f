"""Distractions: things switched off for a session and back on after it.

A TV light strip, a blinking indicator (Hue lights), a screen or a fan on a plug
(Zigbee2MQTT, Tasmota or any MQTT device with on/off payloads). The snapshot is the set
of those that were on; only those are switched back on at the end, so a lamp that was
already off stays off.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field

from ambiance.core.coordinator import Coordinator, Drifted, Unreadable
from ambiance.core.views import DistractionsView, DistractionView
from ambiance.devices.outside import Problems
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, register
from ambiance.errors import DeviceError, DeviceUnavailable
from ambiance.infra.clock import wait_until
from ambiance.infra.mqtt.message import decode_json

if TYPE_CHECKING:
    from ambiance.devices.lights.hue import HueBridge
    from ambiance.infra.clock import Clock
    from ambiance.infra.mqtt import Message, MqttConnection

log = logging.getLogger(__name__)

# Target: True = switched off; state: each switch; snapshot: the names that were on.
DistractionsCoordinator = Coordinator[bool, list[dict[str, Any]], frozenset[str]]


class MqttDistraction(BackendConfig):
    type: Literal["mqtt"]
    name: str = Field(min_length=1, max_length=64)
    command_topic: str = Field(min_length=1)
    payload_on: str = "ON"
    payload_off: str = "OFF"
    state_topic: str | None = Field(
        default=None,
        description="Where the device says its state; without it, it is "
        "taken to be on at the start of a session.",
    )
    state_on: str = "ON"
    state_off: str = "OFF"
    state_key: str | None = Field(
        default=None, description="The JSON field of the state message holding the state."
    )
    get_topic: str | None = Field(
        default=None, description="Where to ask the device to say its state, at start."
    )
    get_payload: str = ""


class Zigbee2MqttDistraction(BackendConfig):
    type: Literal["zigbee2mqtt"]
    device: str = Field(min_length=1, description="The friendly name in Zigbee2MQTT.")
    base_topic: str = "zigbee2mqtt"


class TasmotaDistraction(BackendConfig):
    type: Literal["tasmota"]
    device: str = Field(min_length=1, description="The Tasmota device's topic.")


def as_mqtt(
    config: MqttDistraction | Zigbee2MqttDistraction | TasmotaDistraction,
) -> MqttDistraction:
    """Spell the presets out as plain MQTT devices."""
    if isinstance(config, MqttDistraction):
        return config
    if isinstance(config, Zigbee2MqttDistraction):
        topic = f"{config.base_topic}/{config.device}"
        return MqttDistraction(
            type="mqtt",
            name=config.device,
            command_topic=f"{topic}/set",
            payload_on=json.dumps({"state": "ON"}),
            payload_off=json.dumps({"state": "OFF"}),
            state_topic=topic,
            state_key="state",
            get_topic=f"{topic}/get",
            get_payload=json.dumps({"state": ""}),
        )
    return MqttDistraction(
        type="mqtt",
        name=config.device,
        command_topic=f"cmnd/{config.device}/POWER",
        state_topic=f"stat/{config.device}/POWER",
        get_topic=f"cmnd/{config.device}/POWER",  # an empty POWER command asks for the state
    )


class Switch(Protocol):
    name: str
    kind: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def is_on(self, wait: bool = False) -> bool | None:
        """Return the state, or None when it is not known (`wait`: give it a moment)."""
        ...

    async def turn(self, on: bool) -> None: ...


class HueSwitch:
    kind = "hue"

    def __init__(self, bridge: HueBridge, light: str) -> None:
        self.bridge = bridge
        self.light = light
        self.name = light
        self._id: str | None = None

    async def start(self) -> None:
        return None  # resolved on first use, so a bridge that is down does not block start

    async def stop(self) -> None:
        return None

    async def _light_id(self) -> str:
        if self._id is None:
            lights: dict[str, Any] = await self.bridge.request("GET", "/lights")
            if self.light in lights:
                self._id = self.light
            else:
                named = [i for i, x in lights.items() if x.get("name") == self.light]
                if len(named) != 1:
                    from ambiance.devices.lights.hue import ResourceNotAvailable

                    known = ", ".join(sorted(str(x.get("name")) for x in lights.values()))
                    raise ResourceNotAvailable(
                        f"no single Hue light named {self.light!r} on the bridge at "
                        f"{self.bridge.address} (known: {known or 'none'})"
                    )
                self._id = named[0]
        return self._id

    async def is_on(self, wait: bool = False) -> bool | None:
        light_id = await self._light_id()
        light = await self.bridge.request("GET", f"/lights/{light_id}")
        on = self.bridge.light_state(light_id, light).get("on")
        return None if on is None else bool(on)  # None: the bridge did not validly say

    async def turn(self, on: bool) -> None:
        await self.bridge.request("PUT", f"/lights/{await self._light_id()}/state", {"on": on})


class MqttSwitch:
    kind = "mqtt"

    # How long a session's start waits for a device to say its state (a retained state
    # arrives within milliseconds of subscribing; a device asked with `get` takes longer),
    # and how long a switch is given to say its new state after a command.
    STATE_WAIT = 2.0
    ECHO_WAIT = 1.0

    def __init__(
        self, mqtt: MqttConnection, config: MqttDistraction, *, clock: Clock | None = None
    ) -> None:
        self.mqtt = mqtt
        self.config = config
        self.clock = clock or mqtt.clock  # the service's one clock, by default
        self.name = config.name
        self.state: bool | None = None  # as the device last validly said it
        self._known = asyncio.Event()
        self._heard = asyncio.Event()  # set at each valid state message
        self._unsubscribers: list[Callable[[], None]] = []
        self._problems = Problems(f"{self.kind} switch")  # what it says that is not valid

    async def start(self) -> None:
        if self.config.state_topic:
            self._unsubscribers = [
                self.mqtt.subscribe(self.config.state_topic, self._on_state),
                self.mqtt.on_connect(self._ask),
            ]
            self._ask()

    def _ask(self) -> None:
        if self.config.get_topic and self.mqtt.connected:
            self.mqtt.publish(self.config.get_topic, self.config.get_payload, qos=1)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers = []

    def _on_state(self, message: Message) -> None:
        """Take the state the device says, if it is one of its two; say anything else
        (once) and keep the last valid one."""
        config = self.config
        text = message.text.strip()
        if not text:
            return  # a retained state cleared: nothing said
        value: Any = text
        if config.state_key:
            # Not JSON (or nested too deeply): InvalidInput, which the connection reports
            # as a malformed message, once per topic.
            data = decode_json(text, "the state")
            if not isinstance(data, dict):
                self._problems.say(self.name, config.state_key, text, "not a JSON object")
                return
            if config.state_key not in data:
                return  # a message about something else (linkquality, an update)
            value = data[config.state_key]
            # A number is the text it would be in a raw payload; true, null or a list is not.
            scalar = isinstance(value, str | int) and not isinstance(value, bool)
            text = str(value) if scalar else ""
        if text == config.state_on:
            self.state = True
        elif text == config.state_off:
            self.state = False
        else:
            reason = f"neither {config.state_on!r} nor {config.state_off!r}"
            self._problems.say(self.name, config.state_key or "state", value, reason)
            return
        self._known.set()
        self._heard.set()

    async def is_on(self, wait: bool = False) -> bool | None:
        if wait and self.config.state_topic:
            await self.clock.wait(self._known, self.STATE_WAIT)
        return self.state

    async def turn(self, on: bool) -> None:
        """Switch it, and wait for it to say so when it can: a switch that still says
        the other state is not taken to be switched (DeviceUnavailable: retried)."""
        if not self.mqtt.connected:
            raise DeviceUnavailable(f"cannot switch {self.name}: the MQTT broker is away")
        payload = self.config.payload_on if on else self.config.payload_off
        self.mqtt.publish(self.config.command_topic, payload, qos=1)
        if self.config.state_topic is None:
            self.state = on  # nothing will tell us: remember what we asked
            return
        if not await wait_until(self.clock, lambda: self.state is on, self._heard, self.ECHO_WAIT):
            said = {True: "on", False: "off", None: "nothing"}[self.state]
            raise DeviceUnavailable(
                f"{self.name} still says {said} {self.ECHO_WAIT:g} s after being switched "
                f"{'on' if on else 'off'} (on {self.config.state_topic})"
            )


class Distractions:
    """A room's distractions as one device: `apply(True)` switches them all off."""

    kind = "distractions"

    def __init__(self, switches: list[Switch]) -> None:
        self.switches = switches
        self._off = False  # switched off for a session, and not put back since

    async def start(self) -> None:
        for switch in self.switches:
            await switch.start()

    async def stop(self) -> None:
        for switch in self.switches:
            await switch.stop()

    async def read(self) -> list[dict[str, Any]]:
        """Each switch as it really is now (`on` None: unknown). One that cannot be read
        makes it `Unreadable`; during a session, one that is on again (a bridge restarted
        with its lights on, a hand on the remote) makes it `Drifted`: the coordinator
        switches it off again."""
        states: list[dict[str, Any]] = []
        failures: list[DeviceError] = []
        for switch in self.switches:
            try:
                on = await switch.is_on()
            except DeviceError as exc:
                on = None
                failures.append(exc)
            states.append({"name": switch.name, "kind": switch.kind, "on": on})
        if failures:
            raise Unreadable(str(failures[0]), states)
        back_on = [state["name"] for state in states if state["on"]]
        if self._off and back_on:
            raise Drifted(f"{', '.join(back_on)} on again", states)
        return states

    async def snapshot(self) -> frozenset[str]:
        on = set()
        for switch in self.switches:
            state = await switch.is_on(wait=True)
            if state is None:
                log.info(
                    "%s: state unknown; taken to be on, so it comes back on after", switch.name
                )
            if state is not False:
                on.add(switch.name)
        return frozenset(on)

    async def apply(self, off: bool) -> None:
        self._off = off
        if off:
            await self._each(lambda s: s.turn(False), only_if_on=True)

    async def restore(self, snapshot: frozenset[str], transition: float) -> None:
        self._off = False
        await self._each(lambda s: s.turn(True), names=snapshot)

    def dump_snapshot(self, snapshot: frozenset[str]) -> list[str]:
        return sorted(snapshot)

    def load_snapshot(self, data: Any) -> frozenset[str]:
        return frozenset(str(name) for name in data)

    async def _each(
        self,
        action: Callable[[Switch], Awaitable[None]],
        *,
        only_if_on: bool = False,
        names: frozenset[str] | None = None,
    ) -> None:
        # One failing device must not keep the others on; the first error is raised after
        # all were tried, so the coordinator retries (switching is idempotent).
        failures: list[DeviceError] = []
        for switch in self.switches:
            if names is not None and switch.name not in names:
                continue
            try:
                if only_if_on and await switch.is_on(wait=True) is False:
                    continue
                await action(switch)
            except DeviceError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def distractions_view(coordinator: DistractionsCoordinator) -> DistractionsView:
    """The room's distractions as the API shows them."""
    return DistractionsView(
        synced=coordinator.synced,
        off=bool(coordinator.desired),
        devices=[DistractionView(**device) for device in coordinator.state or []],
    )


# --- the backends ------------------------------------------------------------------------


def build_mqtt_switch(
    config: MqttDistraction | Zigbee2MqttDistraction | TasmotaDistraction, context: BuildContext
) -> MqttSwitch:
    return MqttSwitch(context.mqtt, as_mqtt(config))


# A plain MQTT device with on/off payloads, and two presets of it (as_mqtt spells them out).
for _name, _config in (
    ("mqtt", MqttDistraction),
    ("zigbee2mqtt", Zigbee2MqttDistraction),
    ("tasmota", TasmotaDistraction),
):
    register(
        Backend(
            slot="distraction",
            name=_name,
            config=_config,
            build=build_mqtt_switch,
            needs_broker=True,
        )
    )
