"""The topic filters at the broker, their handlers, and the SUBSCRIBEs not yet acknowledged.

MQTT 5 subscription identifiers: brokers (Mosquitto does) send one copy of a message per
matching subscription, so with overlapping filters (`a/#` and `a/b`) a plain topic match
would run a handler twice; each copy names its subscription, and only that one's handlers
run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ambiance.infra.mqtt.message import Handler, Message, new_properties

log = logging.getLogger(__package__)  # the package's: "ambiance.infra.mqtt", as before


@dataclass(eq=False)  # compared by identity: the same handler may be registered twice
class Registration:
    handler: Handler
    qos: int
    oversized: bool = False


@dataclass(eq=False)
class Filter:
    """One topic filter at the broker, shared by every handler registered on it."""

    identifier: int  # the MQTT 5 subscription identifier
    registrations: list[Registration] = field(default_factory=list)

    @property
    def qos(self) -> int:
        return max(r.qos for r in self.registrations)


class Subscriptions:
    """The connection's filters and the broker's acknowledgements of them.

    Read on paho's thread (on_connect, on_subscribe) and changed from the service's, so
    everything here is guarded by one lock; `settle()` and `wait()` run on the loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # SUBSCRIBEs the broker has not acknowledged yet (by message id), and the
        # acknowledgements that came before we noted their id (paho's thread is quick).
        # Both belong to one connection: `_epoch` counts connections and drops, so a
        # SUBSCRIBE sent on a connection that has died meanwhile is never waited for.
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._epoch = 0
        self._subscribed = asyncio.Event()
        self._subscribed.set()
        self._filters: dict[str, Filter] = {}
        self._next_identifier = 1

    def add(self, topic_filter: str, registration: Registration) -> Filter | None:
        """Register a handler; the filter when it must be sent (new, or now a higher QoS)."""
        with self._lock:
            entry = self._filters.get(topic_filter)
            if entry is None:
                entry = Filter(self._next_identifier)
                self._next_identifier += 1
                self._filters[topic_filter] = entry
            old_qos = entry.qos if entry.registrations else -1
            entry.registrations.append(registration)
            return entry if entry.qos > old_qos else None

    def remove(self, topic_filter: str, registration: Registration) -> bool:
        """Take a handler out; True when its filter has no handler left (unsubscribe it)."""
        with self._lock:
            current = self._filters.get(topic_filter)
            if current is None or registration not in current.registrations:
                return False
            current.registrations.remove(registration)
            if current.registrations:
                return False
            del self._filters[topic_filter]
            return True

    def send(self, client: mqtt.Client, topic_filter: str, entry: Filter) -> bool:
        """SUBSCRIBE to `topic_filter`; True when it now awaits the broker (`settle()`)."""
        with self._lock:
            epoch = self._epoch
        props = new_properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = entry.identifier
        # One SUBSCRIBE per filter: the identifier is a property of the whole packet.
        result, mid = client.subscribe(
            topic_filter, options=SubscribeOptions(qos=entry.qos), properties=props
        )
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return False
        with self._lock:
            if epoch != self._epoch:
                # The connection dropped (and maybe came back) while we sent: that
                # SUBSCRIBE will never be acknowledged, and on_connect sends it anew.
                return False
            if mid in self._early_acks:
                self._early_acks.discard(mid)
            else:
                self._unacked.add(mid)
        return True

    def renew(self) -> list[tuple[str, Filter]]:
        """A new connection: forget the SUBSCRIBEs of the one before; every filter to send."""
        with self._lock:
            self._new_epoch()
            return list(self._filters.items())

    def dropped(self) -> None:
        """The connection dropped: its SUBSCRIBEs died with it."""
        with self._lock:
            self._new_epoch()

    def _new_epoch(self) -> None:
        """Forget the SUBSCRIBEs of the connection before (call with `_lock` held)."""
        self._epoch += 1
        self._unacked.clear()
        self._early_acks.clear()

    def acknowledged(self, mid: int, reasons: list[ReasonCode]) -> None:
        """The broker's SUBACK for `mid` (on paho's thread); `settle()` after it."""
        for reason in reasons:
            if reason.is_failure:
                log.warning("mqtt: the broker refused a subscription: %s", reason)
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)

    def settle(self) -> None:
        """On the loop: let `wait()` return when no SUBSCRIBE awaits the broker."""
        with self._lock:
            settled = not self._unacked
        if settled:
            self._subscribed.set()
        else:
            self._subscribed.clear()

    async def wait(self, timeout: float) -> bool:
        """Wait until every SUBSCRIBE is acknowledged; False on timeout."""
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def handlers(self, message: Message, identifiers: list[int]) -> list[Handler]:
        """The handlers `message` is for (the subscriptions it names, else its topic's)."""
        with self._lock:
            if identifiers:
                # The broker says which subscription(s) this copy is for: run only those,
                # so overlapping filters do not run a handler twice.
                wanted = set(identifiers)
                matched = [f for f in self._filters.values() if f.identifier in wanted]
            else:
                matched = [
                    f
                    for topic_filter, f in self._filters.items()
                    if mqtt.topic_matches_sub(topic_filter, message.topic)
                ]
            return [
                r.handler
                for f in matched
                for r in f.registrations
                if message.oversized is None or r.oversized
            ]
