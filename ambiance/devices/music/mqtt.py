"""Music handed over on MQTT, for a player ambiance cannot drive itself.

Each change publishes what the stage wants, retained, on `<base>/<room>/music`; a Home
Assistant or Node-RED automation plays it on Sonos, Spotify or anything else
(docs/music.md). At the end it publishes `{"state": "restore"}`: the automation puts
back what was playing (Home Assistant's `scene.create` snapshot does that well).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from ambiance.devices.music.base import MusicState, MusicTarget
from ambiance.devices.phones import iso
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, register
from ambiance.errors import DeviceUnavailable
from ambiance.infra.clock import Clock
from ambiance.infra.mqtt import MqttConnection


class MqttMusic:
    kind = "mqtt"

    def __init__(self, room: str, mqtt: MqttConnection, clock: Clock) -> None:
        self.room = room
        self.mqtt = mqtt
        self.clock = clock
        self.last: dict[str, Any] | None = None

    @property
    def topic(self) -> str:
        return self.mqtt.topic(self.room, "music")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def read(self) -> MusicState:
        last = self.last
        if last is None:
            return MusicState(state="unknown")
        playing = last["state"] == "play"
        return MusicState(
            state="play" if playing else "stop",
            volume=last.get("volume"),
            playlist=last.get("playlist"),
        )

    def _publish(self, message: dict[str, Any]) -> None:
        if not self.mqtt.connected:
            # QoS 1 would wait in memory, but say so: the room shows degraded meanwhile,
            # and the coordinator sends the newest wish when the broker is back.
            raise DeviceUnavailable("cannot hand the music over: the MQTT broker is away")
        message = {**message, "room": self.room, "at": iso(self.clock.now())}
        self.mqtt.publish(self.topic, message, qos=1, retain=True)
        self.last = message

    async def apply(self, target: MusicTarget) -> None:
        body = asdict(target)
        body["tracks"] = list(target.tracks)
        body["state"] = "stop" if target.stop else "play"
        del body["stop"]
        self._publish(body)

    async def snapshot(self) -> dict[str, Any]:
        # The automation on the other side keeps what was playing; this only marks that
        # a session began, so that its end says "restore" (None would mean "nothing to do").
        return {"room": self.room}

    async def restore(self, snapshot: dict[str, Any], transition: float) -> None:
        self._publish({"state": "restore", "fade": transition})

    def dump_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return snapshot  # JSON already

    def load_snapshot(self, data: Any) -> dict[str, Any]:
        return dict(data)


class MqttMusicConfig(BackendConfig):
    """Hand the music over to another player: Home Assistant, Node-RED, Sonos, Spotify."""

    backend: Literal["mqtt"]


def build(config: MqttMusicConfig, context: BuildContext) -> MqttMusic:
    return MqttMusic(context.room, context.mqtt, context.clock)


register(
    Backend(
        slot="music",
        name="mqtt",
        config=MqttMusicConfig,
        build=build,
        needs_broker=True,
    )
)
