"""Zigbee lights through Zigbee2MQTT, over the service's one MQTT connection.

Zigbee2MQTT publishes each device's state as one JSON object on `<base>/<name>` (retained
only when the device's `retain` option is on), the device's availability on
`<base>/<name>/availability` and its own on `<base>/bridge/state`. It takes commands on
`<base>/<name>/set`, where `<name>` may also be a group's friendly name: then one Zigbee
group command reaches every member at once, which is what a scene change should be.

So this backend keeps the last state each light published (asking with `/get` at start and
after every reconnect, since nothing may be retained) and reads, snapshots and restores
from that; a change is one publish to the group, or one per light without a group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ambiance.devices.lights.base import (
    BRI_MAX,
    MIRED_MAX,
    MIRED_MIN,
    LightState,
    LightTarget,
    SavedLight,
    Snapshot,
    SnapshotsAsJson,
    bri_to_percent,
    kelvin_to_mired,
    mired_to_kelvin,
    percent_to_bri,
    seconds_to_transitiontime,
)
from ambiance.devices.outside import Reports
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, register
from ambiance.errors import DeviceUnavailable, brief
from ambiance.infra.clock import Clock, wait_until
from ambiance.infra.mqtt import Message, MqttConnection, decode_json

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

# How long a snapshot waits for lights that have not said their state yet (a retained
# state arrives within milliseconds of subscribing; an answer to `/get` takes a Zigbee
# round trip), and how long a command waits for the lights to publish their new state.
STATE_WAIT = 2.0
ECHO_WAIT = 1.0
# Colour temperatures any light may say or be asked for, in mireds.
MIRED_SANE = (50, 1000)


# --- settings ----------------------------------------------------------------------------


def _topic_part(value: str, what: str) -> str:
    """A base topic or friendly name as it goes into a topic: no wildcards, no empty levels.
    Friendly names may hold '/' (Zigbee2MQTT allows `bedroom/lamp`)."""
    if not value:
        raise ValueError(f"{what} must not be empty")
    if "+" in value or "#" in value or "\0" in value:
        raise ValueError(f"{what} {brief(value)} must not contain the MQTT wildcards + or #")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError(
            f"{what} {brief(value)} must not start or end with '/' nor have empty levels"
        )
    return value


class Zigbee2MqttLightsConfig(BackendConfig):
    """A room's lights in Zigbee2MQTT: its friendly names, and the group that holds them."""

    backend: Literal["zigbee2mqtt"]
    base_topic: str = Field(default="zigbee2mqtt", description="Zigbee2MQTT's `mqtt.base_topic`.")
    group: str | None = Field(
        default=None,
        description="A Zigbee2MQTT group holding the lights: each change is then one group "
        "command. Left out: one command per light.",
    )
    lights: list[str] = Field(
        min_length=1, description="The lights' friendly names (read, snapshot and restore)."
    )
    mired_min: int = Field(
        default=MIRED_MIN,
        ge=MIRED_SANE[0],
        le=MIRED_SANE[1],
        description="The coolest colour temperature asked for, in mireds (153 = 6500 K).",
    )
    mired_max: int = Field(
        default=MIRED_MAX,
        ge=MIRED_SANE[0],
        le=MIRED_SANE[1],
        description="The warmest colour temperature asked for, in mireds (500 = 2000 K).",
    )

    @field_validator("base_topic")
    @classmethod
    def _base_topic(cls, value: str) -> str:
        value = _topic_part(value, "base_topic")
        if value.startswith("$"):
            raise ValueError(f"base_topic {brief(value)} must not start with '$' (broker topics)")
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _topic_part(value, "group")

    @field_validator("lights")
    @classmethod
    def _lights(cls, value: list[str]) -> list[str]:
        for name in value:
            _topic_part(name, "light")
        if len(set(value)) != len(value):
            raise ValueError("each light is listed once")
        return value

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.mired_min > self.mired_max:
            raise ValueError("mired_min must not be above mired_max")
        return self


# --- payloads ----------------------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class ColourReport(BaseModel):
    """`color` as Zigbee2MQTT publishes it: xy (CIE, 0-1) and hue/saturation (degrees,
    percent), whichever the light has (with color_sync, both)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    x: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    y: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    hue: float | None = Field(default=None, ge=0, le=360, allow_inf_nan=False)
    saturation: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)


class LightReport(BaseModel):
    """The fields of a light's state message that we show, snapshot and restore; each is
    checked on its own (ambiance.devices.outside), so a bad one is left out and said."""

    model_config = ConfigDict(strict=True, extra="ignore")

    # ON or OFF (any case); nothing else is a state (TOGGLE is a command, not a state).
    state: Annotated[Literal["ON", "OFF"], BeforeValidator(_upper)] | None = None
    brightness: int | None = Field(default=None, ge=0, le=BRI_MAX)
    # Mireds: the bounds the config allows for any light (50-1000, 20000 K-1000 K).
    color_temp: int | None = Field(default=None, ge=MIRED_SANE[0], le=MIRED_SANE[1])
    color_mode: Literal["color_temp", "xy", "hs"] | None = None
    color: ColourReport | None = None


def _is_on(state: Mapping[str, Any]) -> bool:
    return state.get("state") == "ON"  # checked by LightReport: "ON", "OFF" or absent


def _json_object(payload: bytes) -> dict[str, Any] | None:
    """The JSON object in a payload; None for other JSON. A payload that is not JSON raises
    InvalidInput, which the connection reports as a malformed message (a warning)."""
    data = decode_json(payload, "the message")
    return data if isinstance(data, dict) else None


def _online(payload: bytes) -> bool | None:
    """`{"state": "online"}` (Zigbee2MQTT 1.x since 1.28, and 2.x) or a plain `online`
    (the legacy format); None for anything else, e.g. the empty payload of a cleared
    retained message."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        data = _json_object(payload)
        text = str(data.get("state", "")) if data is not None else ""
    text = text.lower()
    return True if text == "online" else False if text == "offline" else None


def _colour(state: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that reproduce a light's colour exactly, chosen by its `color_mode`.

    Zigbee2MQTT keeps `color_temp` and `color` both filled in (with color_sync each is
    derived from the other), so only the mode says which one the light really shows.
    """
    mode = state.get("color_mode")
    color = state.get("color")
    if mode == "xy" and isinstance(color, dict) and "x" in color and "y" in color:
        return {"color": {"x": color["x"], "y": color["y"]}}
    if mode == "hs" and isinstance(color, dict) and "hue" in color and "saturation" in color:
        return {"color": {"hue": color["hue"], "saturation": color["saturation"]}}
    if mode in ("color_temp", None) and "color_temp" in state:
        return {"color_temp": state["color_temp"]}
    return {}


def _exact(state: Mapping[str, Any]) -> dict[str, Any]:
    """What a snapshot keeps of one light: on/off, brightness and the colour of its mode.

    Only what the light validly said: a light whose on/off is not known has no `state`
    here, and its restore leaves it on or off as it is then."""
    exact: dict[str, Any] = {"state": state["state"]} if "state" in state else {}
    if "brightness" in state:
        exact["brightness"] = state["brightness"]
    return exact | _colour(state)


def _seconds(seconds: float) -> float:
    """Zigbee2MQTT takes `transition` in seconds but sends tenths (a uint16) to the light:
    round the same way the Hue backend does, through the one conversion in base.py."""
    return seconds_to_transitiontime(seconds) / 10


# --- the backend -------------------------------------------------------------------------


class Zigbee2MqttLights(SnapshotsAsJson):
    """The lights of one room in Zigbee2MQTT, driven through the service's MQTT connection."""

    kind = "zigbee2mqtt"

    def __init__(
        self,
        mqtt: MqttConnection,
        config: Zigbee2MqttLightsConfig,
        *,
        sleep: Sleep | None = None,
        state_wait: float = STATE_WAIT,
        echo_wait: float = ECHO_WAIT,
        clock: Clock | None = None,
    ) -> None:
        self.mqtt = mqtt
        self.config = config
        self.clock = clock or mqtt.clock  # the service's one clock, by default
        # Waits out a restore's fade: the clock, unless a test passes its own.
        self._sleep = sleep or self.clock.sleep
        self.state_wait = state_wait
        self.echo_wait = echo_wait
        # Each light's state as it last published it (merged: Zigbee2MQTT sends it whole,
        # but a partial message must not wipe what we know).
        self.states: dict[str, dict[str, Any]] = {}
        self.available: dict[str, bool] = {}  # absent: Zigbee2MQTT's availability is off
        self.bridge_online: bool | None = None  # None: not said (yet)
        self._reports: dict[str, int] = {}  # state messages per light: quiet or not
        self._update = asyncio.Event()
        self._state_topics: dict[str, str] = {}
        self._availability_topics: dict[str, str] = {}
        self._unsubscribers: list[Callable[[], None]] = []
        self._quiet: set[str] = set()  # lights that ignored a command (warned once)
        self._outside = Reports(LightReport, "zigbee2mqtt")  # checks what lights say

    def topic(self, *parts: str) -> str:
        return "/".join([self.config.base_topic, *parts])

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._unsubscribers:
            return
        self._state_topics = {self.topic(name): name for name in self.config.lights}
        self._availability_topics = {
            self.topic(name, "availability"): name for name in self.config.lights
        }
        # Subscriptions made before the connection is up are sent by the connection once
        # it is (and again, in this order, after every reconnect); the broker hands out
        # retained messages in that order too, so Zigbee2MQTT's own state comes first.
        self._unsubscribers.append(
            self.mqtt.subscribe(self.topic("bridge", "state"), self._on_bridge_state)
        )
        for topic in self._state_topics:
            self._unsubscribers.append(self.mqtt.subscribe(topic, self._on_state))
        for topic in self._availability_topics:
            self._unsubscribers.append(self.mqtt.subscribe(topic, self._on_availability))
        # While we were away the lights may have changed, and nothing may be retained.
        self._unsubscribers.append(self.mqtt.on_connect(lambda: self._ask(self.config.lights)))
        self._ask(self.config.lights)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers = []

    def _ask(self, names: Iterable[str]) -> None:
        """Ask Zigbee2MQTT to publish these lights' states (it reads them from the device)."""
        if not self.mqtt.connected:
            return  # on_connect asks once the connection is up
        for name in names:
            self.mqtt.publish(self.topic(name, "get"), {"state": ""}, qos=1)

    # --- what Zigbee2MQTT says (on the asyncio loop) ---------------------------------

    def _on_state(self, message: Message) -> None:
        name = self._state_topics.get(message.topic)
        if name is None:
            return
        if not message.payload:
            # A retained state cleared: the device was removed or renamed in Zigbee2MQTT.
            self.states.pop(name, None)
            return
        data = _json_object(message.payload)
        if data is None:
            log.debug("zigbee2mqtt: %s sent a state that is not a JSON object", name)
            return
        # Only valid fields are merged: a bad one leaves the last valid value standing.
        self.states[name] = {**self.states.get(name, {}), **self._outside.valid(name, data)}
        self._reports[name] = self._reports.get(name, 0) + 1
        self._quiet.discard(name)
        self._notify()

    def _on_availability(self, message: Message) -> None:
        name = self._availability_topics.get(message.topic)
        if name is None:
            return
        online = _online(message.payload)
        if online is None:
            self.available.pop(name, None)
        else:
            self.available[name] = online
        self._notify()

    def _on_bridge_state(self, message: Message) -> None:
        online = _online(message.payload)
        was, self.bridge_online = self.bridge_online, online
        if online and was is False:
            # Zigbee2MQTT came back: what it knows now is what counts.
            self._ask(self.config.lights)
        self._notify()

    def _notify(self) -> None:
        self._update.set()

    async def _wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until `done()` holds, re-checking at each message; False after `timeout`."""
        return await wait_until(self.clock, done, self._update, timeout)

    # --- checks ----------------------------------------------------------------------

    async def _connected(self) -> None:
        # At start-up the broker connection is usually a moment away: give it that moment
        # rather than flag the room degraded for it.
        if not self.mqtt.connected:
            await self.mqtt.wait_connected(self.state_wait)

    def _check(self, action: str) -> None:
        """Raise DeviceUnavailable (the coordinator then retries) when nothing can arrive."""
        if not self.mqtt.connected:
            raise DeviceUnavailable(f"cannot {action}: not connected to the MQTT broker")
        if self.bridge_online is False:
            raise DeviceUnavailable(
                f"cannot {action}: Zigbee2MQTT is offline ({self.topic('bridge', 'state')})"
            )

    # --- the LightsBackend protocol --------------------------------------------------

    async def read(self) -> list[LightState]:
        await self._connected()
        self._check("read the lights")
        return [self._light_state(name) for name in self.config.lights]

    def _light_state(self, name: str) -> LightState:
        state = self.states.get(name)
        if state is None or "state" not in state:
            # Not heard of yet, or never a valid on/off: say so rather than guess.
            return LightState(name, name, on=False, brightness=None, kelvin=None, reachable=False)
        bri = state.get("brightness")
        ct = state.get("color_temp")
        in_ct = state.get("color_mode", "color_temp") == "color_temp"
        return LightState(
            id=name,
            name=name,
            on=_is_on(state),
            brightness=bri_to_percent(bri) if bri is not None else None,
            kelvin=mired_to_kelvin(ct) if in_ct and ct is not None else None,
            reachable=self.available.get(name, True),
        )

    async def apply(self, target: LightTarget) -> None:
        """One publish to the group (or one per light), then a short wait for the lights to
        publish their new state, so that the read that follows shows it."""
        self._check("set the lights")
        body: dict[str, Any]
        if target.on:
            body = {"state": "ON", "brightness": percent_to_bri(target.brightness)}
            # What each light should report (colour aside: it is clamped per light).
            want = dict(body)
            if target.kelvin is not None:
                # Zigbee2MQTT clamps into each light's own range (the group command is one
                # value for all); we only keep the request within the configured bounds.
                body["color_temp"] = kelvin_to_mired(
                    target.kelvin, self.config.mired_min, self.config.mired_max
                )
        else:
            # An OFF with a transition is a fade to level 0 in Zigbee2MQTT, which remembers
            # the brightness from before and gives it back at the next ON: no need for the
            # two steps that Hue needs here.
            body = {"state": "OFF"}
            want = dict(body)
        body["transition"] = _seconds(target.transition)
        before = dict(self._reports)
        if self.config.group is not None:
            self.mqtt.publish(self.topic(self.config.group, "set"), body, qos=1)
        else:
            for name in self.config.lights:
                self.mqtt.publish(self.topic(name, "set"), body, qos=1)
        await self._await_echo(before, dict.fromkeys(self.config.lights, want))

    async def snapshot(self) -> Snapshot:
        """Each light's exact state as it published it. A light that has not said its state
        yet is asked again and waited for a moment; then DeviceUnavailable, so the
        coordinator retries: a snapshot is never a guess."""
        await self._connected()
        self._check("take a snapshot of the lights")
        lights = self.config.lights
        missing = [name for name in lights if name not in self.states]
        if missing:
            self._ask(missing)
            await self._wait_until(lambda: all(n in self.states for n in lights), self.state_wait)
            missing = [name for name in lights if name not in self.states]
        if missing:
            raise DeviceUnavailable(
                f"no state from zigbee2mqtt for {', '.join(missing)} yet (asked on "
                f"{self.topic(missing[0], 'get')}; check the friendly name and the base topic)"
            )
        return Snapshot(tuple(SavedLight(n, n, _exact(self.states[n])) for n in lights))

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        """Put every light back as saved, one light at a time.

        A light that was on gets its saved brightness and colour with the transition.

        A light that was off takes three steps, because Zigbee2MQTT drops a brightness
        given with `"state": "OFF"` (herdsman-converters' light_onoff_brightness: for a
        target state OFF the brightness becomes 0 when a transition is given — a fade to
        off, published as brightness 0 — and is left out otherwise), and a Zigbee light
        cannot be dimmed while off by a command that also switches it:
          1. fade it to brightness 1 (and its saved colour) over the transition, and wait
             once for all of them;
          2. `{"state": "OFF", <colour>, "transition": 0}`: Zigbee2MQTT sends the colour
             first (it orders colour before an OFF), then switches off at once. No
             brightness here, for the reason above;
          3. `{"state": null, "brightness": b0, "transition": 0}`: an explicit null state
             makes Zigbee2MQTT send Move to Level *without* On/Off, which never switches a
             light on. A light that executes level commands while off (Zigbee's
             ExecuteIfOff; Zigbee2MQTT's `level_config: {execute_if_off: true}`) comes
             back at b0 next time; one that does not ignores it and comes back dim.
             Zigbee2MQTT remembers b0 either way, and its state says b0, as before.
        """
        self._check("restore the lights")
        seconds = _seconds(transition)
        before = dict(self._reports)

        def send(name: str, body: dict[str, Any]) -> None:
            self.mqtt.publish(self.topic(name, "set"), body, qos=1)

        known = set(self.config.lights)
        want: dict[str, dict[str, Any]] = {}
        to_switch_off: list[SavedLight] = []
        faded = False
        for saved in snapshot.lights:
            if saved.id not in known:
                log.warning("restore: light %s is no longer in the room's config", saved.name)
                continue
            colour = self._saved_colour(saved)
            state = saved.state.get("state")
            want[saved.id] = {"state": state, **self._bri(saved)} if state else self._bri(saved)
            if state == "ON":
                send(saved.id, {"state": "ON", **self._bri(saved), **colour, "transition": seconds})
                continue
            if state is None:
                # Its on/off was not known at the start: neither switch it on nor off, and
                # give back the brightness and colour it had (a null state: the level only).
                if self._bri(saved) or colour:
                    body = {"state": None, **self._bri(saved), **colour, "transition": seconds}
                    send(saved.id, body)
                continue
            to_switch_off.append(saved)
            current = self.states.get(saved.id, {})
            # No transition, or a light already off or without dimming: nothing to fade.
            if seconds and _is_on(current) and "brightness" in current:
                send(saved.id, {"brightness": 1, **colour, "transition": seconds})
                faded = True

        if faded:
            await self._sleep(transition)
        for saved in to_switch_off:
            send(saved.id, {"state": "OFF", **self._saved_colour(saved), "transition": 0})
            if "brightness" in saved.state:
                body = {"state": None, "brightness": saved.state["brightness"], "transition": 0}
                send(saved.id, body)
        await self._await_echo(before, want)

    @staticmethod
    def _bri(saved: SavedLight) -> dict[str, Any]:
        return {"brightness": saved.state["brightness"]} if "brightness" in saved.state else {}

    @staticmethod
    def _saved_colour(saved: SavedLight) -> dict[str, Any]:
        """`color_temp` or `color`: the snapshot kept only the one of the light's mode."""
        return {k: v for k, v in saved.state.items() if k not in ("state", "brightness")}

    async def _await_echo(
        self, before: Mapping[str, int], want: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Wait (at most `echo_wait`) until each light that is not offline reports the state
        and brightness it was given, so the coordinator's read that follows shows them.

        By content, not by counting messages: an answer to an earlier `/get` or a
        linkquality update is a state message too. Never an error: Zigbee2MQTT has the
        command, and a light that reports something else (its own rounding, a hand on the
        switch) is only not what we expected."""

        def waiting() -> list[str]:
            return [
                name
                for name, values in want.items()
                if self.available.get(name, True)
                and any(self.states.get(name, {}).get(k) != v for k, v in values.items())
            ]

        if await self._wait_until(lambda: not waiting(), self.echo_wait):
            return
        for name in waiting():
            if self._reports.get(name, 0) != before.get(name, 0) or name in self._quiet:
                continue  # it did publish (something else), or we said so already
            self._quiet.add(name)
            where = f"group {self.config.group!r}" if self.config.group else "its /set topic"
            log.warning(
                "zigbee2mqtt: %s published no state within %g s of a command to %s "
                "(is it in that group, and is the friendly name right?)",
                name,
                self.echo_wait,
                where,
            )


def build(config: Zigbee2MqttLightsConfig, context: BuildContext) -> Zigbee2MqttLights:
    return Zigbee2MqttLights(context.mqtt, config)


register(
    Backend(
        slot="lights",
        name="zigbee2mqtt",
        config=Zigbee2MqttLightsConfig,
        build=build,
        needs_broker=True,
    )
)
