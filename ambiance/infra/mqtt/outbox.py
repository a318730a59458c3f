"""QoS 1/2 messages on their way to the broker: a few in flight, the rest waiting in order."""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__package__)  # the package's: "ambiance.infra.mqtt", as before

# QoS 1/2 messages handed to paho and not yet acknowledged by the broker. Beyond this they
# wait in our own outbox, where a retained message replaces the one before it on its topic:
# a thousand rooms changing stage at once, or a broker away for an hour, then cost one
# message per topic instead of a queue that overflows and drops the newest state.
MAX_IN_FLIGHT = 100
# Messages that are not retained (commands to devices) kept in the outbox at most, so that
# a broker that is down for days cannot grow the service without end; they come at a few
# per minute, far below this.
MAX_QUEUED = 1000


@dataclass(frozen=True)
class Outgoing:
    """A QoS 1/2 message waiting in the outbox."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """The QoS 1/2 messages not yet acknowledged: at most MAX_IN_FLIGHT handed to paho, the
    rest waiting here. `len()` counts those waiting. Used on the loop's thread only, but for
    `acknowledged()`, which paho's thread calls."""

    def __init__(self) -> None:
        # Not yet handed to paho, oldest first: keyed by topic when retained (a newer one
        # replaces it), by a number otherwise.
        self._waiting: OrderedDict[str | int, Outgoing] = OrderedDict()
        self._unkeyed = itertools.count()
        self._queued = 0  # messages waiting that are not retained
        # paho message ids not yet acknowledged, with their topic when retained.
        self._in_flight: dict[int, str | None] = {}
        # Acknowledgements from paho's thread, handed to the loop in batches: one wake-up
        # of the loop per batch, not per message (with many rooms that was most of it).
        self._acks: deque[int] = deque()
        self._acks_scheduled = False

    def __len__(self) -> int:
        return len(self._waiting)

    def clear(self) -> None:
        """Forget every message (the connection stopped, or starts afresh)."""
        self._waiting.clear()
        self._in_flight.clear()
        self._queued = 0
        self._acks.clear()
        self._acks_scheduled = False

    def put(self, message: Outgoing) -> None:
        """Queue `message` behind those waiting (a retained one replaces its topic's)."""
        topic = message.topic
        if message.retain:
            # Replaces a waiting one, and goes after everything published before it, as
            # it would have without the wait.
            self._waiting.pop(topic, None)
            self._waiting[topic] = message
        elif self._queued >= MAX_QUEUED:
            log.warning(
                "mqtt: %d messages already wait for the broker; dropped one to %s",
                MAX_QUEUED,
                topic,
            )
        else:
            self._waiting[next(self._unkeyed)] = message
            self._queued += 1

    def pump(self, client: mqtt.Client, limit: int | None = MAX_IN_FLIGHT) -> None:
        """Hand waiting messages to paho while fewer than `limit` await the broker."""
        while self._waiting and (limit is None or len(self._in_flight) < limit):
            key, message = self._waiting.popitem(last=False)
            if isinstance(key, int):
                self._queued -= 1
            info = client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            # NO_CONN: paho keeps it and sends it after the reconnect.
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self._in_flight[info.mid] = message.topic if message.retain else None
            else:
                log.warning("mqtt: could not send a message to %s: %s", message.topic, info.rc)

    def acknowledged(self, mid: int) -> bool:
        """Note the broker's acknowledgement of `mid` (on paho's thread); True when the
        loop must be asked to `take_acks()`, False when a call is already on its way."""
        self._acks.append(mid)
        if self._acks_scheduled:
            return False
        self._acks_scheduled = True
        return True

    def take_acks(self) -> None:
        """On the loop: take the acknowledged messages out of flight (pump after it)."""
        # The flag first: an ack appended from now on schedules another call.
        self._acks_scheduled = False
        acks = self._acks
        while acks:
            self._in_flight.pop(acks.popleft(), None)

    def pending(self) -> set[str]:
        """The retained topics with a message on its way: waiting here, or handed to paho
        and not acknowledged yet (paho sends those again after a reconnect)."""
        waiting = {key for key in self._waiting if isinstance(key, str)}
        return waiting | {topic for topic in self._in_flight.values() if topic is not None}
