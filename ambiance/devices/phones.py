"""Phones on do-not-disturb, over MQTT.

There is no standard do-not-disturb topic: each phone's automation app (Tasker with an
MQTT plugin, a Home Assistant automation calling the companion app's `command_dnd`)
subscribes to `<base>/phones/<phone>/dnd` and acts. Messages are retained and QoS 1, so
a phone that reconnects, or a broker that restarts, still ends in the right state.
docs/phones.md shows the receiving side.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.core.views import DeviceHealth, PhoneView
from ambiance.infra.clock import Clock
from ambiance.infra.mqtt import MqttConnection
from ambiance.infra.store import Store

log = logging.getLogger(__name__)

TOPIC_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DndMode = Literal["priority_only", "alarms_only", "total_silence"]


class PhoneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOPIC_NAME, description="Used in the topic; e.g. `sams-pixel`.")
    mode: DndMode = Field(
        default="priority_only", description="Android's do-not-disturb mode to ask for."
    )


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _moved(new: float | None, old: float | None) -> bool:
    if new is None or old is None:
        return new != old
    return abs(new - old) >= 60


class Phones:
    """The phones of one room; `set()` says whether they should be on do-not-disturb."""

    def __init__(
        self,
        room: str,
        phones: list[PhoneConfig],
        mqtt: MqttConnection,
        clock: Clock,
        store: Store | None = None,
    ) -> None:
        self.room = room
        self.phones = phones
        self.mqtt = mqtt
        self.clock = clock
        self.store = store
        self.on = False  # what we last asked of them
        self.until: float | None = None
        self.session: str | None = None

    def topic(self, phone: PhoneConfig) -> str:
        return self.mqtt.topic("phones", phone.name, "dnd")

    def set(self, on: bool, *, until: float | None = None, session: str | None = None) -> None:
        """Ask every phone for DND on (until a time) or off; repeats are sent only when the
        end time moved by a minute or more."""
        if not self.phones:
            return
        if not on and not self.on:
            return  # nothing of ours to undo
        if on and self.on and not _moved(until, self.until):
            return
        self.on, self.until, self.session = on, (until if on else None), session
        for phone in self.phones:
            payload = self.payload(phone)
            self.mqtt.publish(self.topic(phone), payload, qos=1, retain=True)
            if self.store is not None:  # so that after a restart "off" still follows "on"
                # At the end of the loop's turn, in one transaction with the session's save.
                self.store.dnd.save_soon(self.room, phone.name, payload, at=self.clock.now())
        log.info("%s: phones %s on do-not-disturb", self.room, "put" if on else "taken off")

    def load(self) -> None:
        """Take up what was last sent to the phones before a restart."""
        if self.store is None:
            return
        sent = self.store.dnd.states(self.room)
        on = [p for p in sent.values() if p.get("state") == "on"]
        if on:
            self.on = True
            until = on[0].get("until")
            self.until = datetime.fromisoformat(until).timestamp() if until else None
            self.session = on[0].get("session")

    def payload(self, phone: PhoneConfig) -> dict[str, Any]:
        return {
            "state": "on" if self.on else "off",
            "mode": phone.mode if self.on else "off",
            "room": self.room,
            "until": iso(self.until),
            "session": self.session,
            "at": iso(self.clock.now()),
        }

    def view(self) -> list[PhoneView]:
        until = iso(self.until)
        return [PhoneView(name=p.name, mode=p.mode, dnd=self.on, until=until) for p in self.phones]

    def health(self) -> DeviceHealth:
        """The phones are as reachable as the broker their messages go through."""
        return self.mqtt.health.view().model_copy(update={"device": "phones"})
