"""The one MQTT connection of the service (paho-mqtt 2, callback API version 2).

paho runs the network in a thread of its own (`connect_async` + `loop_start`): it connects in
the background, reconnects by itself with a growing delay, and keeps QoS 1/2 messages
published while the broker is away in memory until the next connection. Everything that
reaches the rest of the service from that thread (message handlers, on-connect listeners,
health changes, which publish on the synchronous event bus) is handed to the asyncio loop
with `call_soon_threadsafe`, so no other module ever runs on paho's thread.

Protocol: MQTT 5. It gives three things this service uses:
- Maximum Packet Size in CONNECT: the broker never sends us a packet over `MAX_PACKET`, so
  a runaway publisher cannot make us read hundreds of megabytes; smaller payloads over
  `MAX_PAYLOAD` reach us, and are dropped here: handlers that asked hear of their size (the
  MQTT door reports a command too large to its sender), the others get a warning;
- subscription identifiers: with overlapping filters a handler still runs once per
  message (see subscriptions.py);
- reason codes that say why a broker refused us ("Not authorized").
Every maintained broker speaks MQTT 5 (Mosquitto since 1.6, EMQX, HiveMQ, Home Assistant's
add-on).

Topics: the last will and the status `<base>/status` = `online` | `offline`, QoS 1, retained.

Retained messages: the connection keeps the last retained QoS 1/2 payload it published on
each topic (an empty one clears the topic, and it is forgotten), and after every connection
publishes again those that are not on their way already. A broker that restarted empty, or
lost what we sent before it died, so has every retained message of ours again, each with
its newest value, whoever published it (phones, room states, discovery, music).

The rest lives beside this module: settings.py (MqttSettings), client.py (the paho client
as the settings want it), message.py (Message and payloads), outbox.py (QoS 1/2 messages
on their way) and subscriptions.py (filters, handlers and their SUBSCRIBEs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ambiance.core.events import EventBus
from ambiance.core.health import Availability
from ambiance.errors import DeviceUnavailable, InvalidInput
from ambiance.infra.clock import Clock
from ambiance.infra.metrics import Metrics
from ambiance.infra.mqtt.client import OFFLINE, ONLINE, new_client
from ambiance.infra.mqtt.message import (
    MAX_PAYLOAD,
    Handler,
    Message,
    Payload,
    encode_payload,
    new_properties,
)
from ambiance.infra.mqtt.outbox import MAX_IN_FLIGHT, Outbox, Outgoing
from ambiance.infra.mqtt.settings import MqttSettings
from ambiance.infra.mqtt.subscriptions import Filter, Registration, Subscriptions

# The package's name ("ambiance.infra.mqtt", as before it was split): log filters keep working.
log = logging.getLogger(__package__)

# Sent to the broker as our Maximum Packet Size: it drops (for us only) anything bigger, so
# even a gigabyte-sized publish costs this service nothing. MQTT has no way to tell us of a
# message dropped that way, so this is far above MAX_PAYLOAD: a message too large by
# mistake (a whole file, a runaway template) still reaches us and is reported to its
# sender; only beyond this does the broker drop it for us (Mosquitto logs that it did).
# paho reads a packet whole into memory: 16 MiB costs a few dozen megabytes for a moment.
MAX_PACKET = 16 * 1024 * 1024
# Topics warned about, at most: a publisher stuck in a loop over new topics must not flood
# the log either.
MAX_WARNED = 100
# How long `stop()` waits for the broker to acknowledge the `offline` status.
STOP_TIMEOUT = 2.0

Listener = Callable[[], None]


# --- the connection ------------------------------------------------------------------


class MqttConnection:
    """The service's one MQTT connection. Start it with `start()` or `async with`."""

    def __init__(
        self, settings: MqttSettings, bus: EventBus, clock: Clock, *, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bus = bus
        self.clock = clock
        self.health = Availability("", "mqtt", "mqtt", bus, clock, metrics)
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._connected = False  # as the asyncio side knows it
        self._connected_event = asyncio.Event()
        self._subscriptions = Subscriptions()
        # Guards the listeners: they are read on paho's thread (on_connect) and changed
        # from the service's.
        self._lock = threading.Lock()
        self._listeners: list[list[Listener]] = []  # boxed, so removal is by identity
        self._warned: set[tuple[str, str]] = set()  # (what, topic) warned about once
        self._outbox = Outbox()  # QoS 1/2 messages; loop thread only
        # The last retained payload (and its QoS) we published on each topic, to publish
        # again after every connection; loop thread only.
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._loop_thread: int | None = None

    # --- life cycle -------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.settings.host is not None

    @property
    def connected(self) -> bool:
        """True from the broker's CONNACK until the connection drops (seen on the loop)."""
        return self._connected

    @property
    def status_topic(self) -> str:
        return self.topic("status")

    def topic(self, *parts: str) -> str:
        """`<base_topic>/<part>/<part>...`."""
        return "/".join([self.settings.base_topic, *parts])

    async def start(self) -> None:
        """Connect in the background; return at once. A broker that is down is no error:
        paho keeps trying. Raises ConfigError when the TLS files cannot be used."""
        settings = self.settings
        self._connected_metric(False)
        if settings.host is None:
            log.info("mqtt: no broker configured (mqtt.host); running without MQTT")
            return
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._outbox.clear()
        self._stopping = False

        client = new_client(settings, self.status_topic)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish

        connect = new_properties(PacketTypes.CONNECT)
        connect.MaximumPacketSize = MAX_PACKET
        # Clean start on every connection, no session kept at the broker: commands sent
        # while we were away are stale, and on_connect subscribes afresh anyway.
        client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive,
            clean_start=True,
            properties=connect,
        )
        log.info(
            "mqtt: connecting to %s:%s as %s%s%s",
            settings.host,
            settings.port,
            settings.resolved_client_id,
            " over TLS" if settings.tls else "",
            f" (user {settings.username})" if settings.username else "",
        )
        self._client = client
        client.loop_start()

    async def stop(self) -> None:
        """Publish `offline` (retained), disconnect cleanly and stop paho's thread."""
        if self._client is None:
            return
        self._stopping = True  # first: paho's callbacks from now on are the shutdown's
        client = self._client
        if client.is_connected():
            self._outbox.pump(client, limit=None)  # what still waits goes out before `offline`
        self._client = None
        self._outbox.clear()
        if client.is_connected():
            # A clean DISCONNECT makes the broker discard the will, so say `offline` ourselves.
            info = client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            try:
                await asyncio.to_thread(info.wait_for_publish, STOP_TIMEOUT)
            except (ValueError, RuntimeError) as exc:
                log.debug("mqtt: offline status not confirmed: %s", exc)
        client.disconnect()
        # loop_stop joins paho's thread, which may be inside a reconnect wait: not on the loop.
        await asyncio.to_thread(client.loop_stop)
        self._connected = False
        self._connected_metric(False)
        self._connected_event.clear()
        log.info("mqtt: disconnected from %s:%s", self.settings.host, self.settings.port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until connected, at most `timeout` seconds; False if not (or MQTT is off)."""
        if not self.enabled:
            return False
        try:
            await asyncio.wait_for(self._connected_event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # --- publishing -------------------------------------------------------------------

    def publish(self, topic: str, payload: Payload, *, qos: int = 0, retain: bool = False) -> None:
        """Send a message; safe from any thread; never raises because the broker is away.

        QoS 1/2 messages are delivered in order, also across a broker that is away: at
        most MAX_IN_FLIGHT wait for the broker's acknowledgement, the rest in an outbox.
        There a retained message replaces a waiting one on the same topic (the broker
        would keep only the last anyway), and at most MAX_QUEUED others wait. QoS 0
        messages are sent at once, or dropped while disconnected, as MQTT means them to be.
        A retained QoS 1/2 message is also kept, and published again after every
        reconnection until another one on its topic replaces it (an empty payload clears
        the topic).
        A topic with a wildcard or a QoS outside 0-2 raises ValueError: that is a bug,
        not weather.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos}")
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"cannot publish to {topic!r}: not a topic name")
        data = encode_payload(payload)
        if threading.get_ident() != self._loop_thread:
            self._to_loop(self._send, topic, data, qos, retain)
        else:
            self._send(topic, data, qos, retain)

    def _send(self, topic: str, data: bytes, qos: int, retain: bool) -> None:
        if retain:
            if data and qos > 0:
                self._retained[topic] = (data, qos)
            else:  # cleared, or sent at QoS 0 (at most once: not sent again either)
                self._retained.pop(topic, None)
        client = self._client
        if client is None:
            log.debug("mqtt: not started, dropped a message to %s", topic)
            return
        if qos == 0:
            info = client.publish(topic, data, qos=0, retain=retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                log.debug("mqtt: not connected, dropped a QoS 0 message to %s", topic)
            return
        self._outbox.put(Outgoing(topic, data, qos, retain))
        self._pump()

    def _pump(self) -> None:
        """Hand waiting messages to paho while fewer than MAX_IN_FLIGHT await the broker."""
        client = self._client
        if client is not None:
            self._outbox.pump(client, MAX_IN_FLIGHT)

    def _acknowledged(self) -> None:
        self._outbox.take_acks()
        self._pump()

    # --- subscribing ------------------------------------------------------------------

    def subscribe(
        self, topic_filter: str, handler: Handler, qos: int = 1, *, oversized: bool = False
    ) -> Callable[[], None]:
        """Call `handler` on the asyncio loop for each message on `topic_filter` (wildcards
        allowed), from now on and after every reconnect. Returns the unsubscribe function.

        With `oversized`, the handler also hears of messages over MAX_PAYLOAD (with an
        empty payload and `Message.oversized` set to the size), and reports them itself;
        the connection warns of those no handler takes. A handler that raises InvalidInput
        (`Message.json()` does, for a payload that is not JSON) says the message is
        malformed: that is a warning naming the topic, once per topic; anything else it
        raises is a bug, logged with its traceback."""
        if not topic_filter:
            raise ValueError("empty topic filter")
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos}")
        registration = Registration(handler, qos, oversized)
        entry = self._subscriptions.add(topic_filter, registration)
        if entry is not None:
            self._send_subscribe(topic_filter, entry)

        def unsubscribe() -> None:
            if not self._subscriptions.remove(topic_filter, registration):
                return
            client = self._client
            if client is not None:
                client.unsubscribe(topic_filter)  # NO_CONN is fine: nothing to undo then

        return unsubscribe

    def _send_subscribe(self, topic_filter: str, entry: Filter) -> None:
        client = self._client
        # Only on an accepted connection: paho would queue a SUBSCRIBE made while it is
        # still connecting ahead of its CONNECT, and the broker drops a client whose first
        # packet is not CONNECT. on_connect sends every filter once the broker accepts us
        # (paho marks the connection accepted before it calls on_connect, so a filter
        # added meanwhile is sent by one side or the other, at worst by both).
        if client is None or not client.is_connected():
            return
        if self._subscriptions.send(client, topic_filter, entry):
            self._to_loop(self._subscriptions.settle)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until connected and every subscription is acknowledged by the broker, so
        that a message published from now on reaches our handlers; False on timeout."""
        if not await self.wait_connected(timeout):
            return False
        if not await self._subscriptions.wait(timeout):
            return False
        return self.connected

    def on_connect(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on the asyncio loop after every (re)connection, once the status
        says `online` and the subscriptions are sent. Returns the function that removes it."""
        box = [listener]
        with self._lock:
            self._listeners.append(box)

        def remove() -> None:
            with self._lock:
                if box in self._listeners:
                    self._listeners.remove(box)

        return remove

    # --- paho's thread ----------------------------------------------------------------
    # Each callback does the network part here and hands the rest to the loop.

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between check and call
            loop.call_soon_threadsafe(callback, *args)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._stopping:
            return
        if reason.is_failure:
            # Bad credentials, not authorised, banned...: paho tries again after the delay;
            # the health says why, once.
            error = DeviceUnavailable(f"broker refused the connection: {str(reason).lower()}")
            self._to_loop(self._failed, error)
            return
        try:
            client.publish(self.status_topic, ONLINE, qos=1, retain=True)
            for topic_filter, entry in self._subscriptions.renew():
                self._send_subscribe(topic_filter, entry)
        except Exception:
            log.exception("mqtt: setting up the new connection failed")
        self._to_loop(self._connected_on_loop)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:` around the connection attempt,
        # so the exception (refused, TLS verification, DNS) is the one being handled.
        exc = sys.exc_info()[1]
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        if isinstance(exc, ssl.SSLError):
            message = f"TLS with the broker at {where} failed: {exc}"
        elif exc is not None:
            message = f"cannot reach the broker at {where}: {exc}"
        else:
            message = f"cannot reach the broker at {where}"
        self._to_loop(self._failed, DeviceUnavailable(message))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._stopping:
            return
        # Those SUBSCRIBEs died with the connection; on_connect (this thread, later) resends.
        self._subscriptions.dropped()
        self._to_loop(self._subscriptions.settle)
        # paho names a dropped socket "Unspecified error"; only a DISCONNECT packet from the
        # broker carries a reason worth showing.
        why = str(reason).lower() if flags.is_disconnect_packet_from_server else None
        self._to_loop(self._disconnected, why)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscriptions.acknowledged(mid, reasons)
        self._to_loop(self._subscriptions.settle)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # QoS 1: the broker's PUBACK (QoS 0: written to the socket; not in flight anyway).
        if reason.is_failure:
            log.warning("mqtt: the broker refused a message: %s", reason)
        if self._outbox.acknowledged(mid):
            self._to_loop(self._acknowledged)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
            size = len(message.payload)
            identifiers: list[int] = []
            if message.properties is not None:
                identifiers = list(getattr(message.properties, "SubscriptionIdentifier", []))
            if size > MAX_PAYLOAD:
                # Warned about on the loop, where the handlers that report it are known.
                received = Message(topic, b"", bool(message.retain), message.qos, oversized=size)
            else:
                received = Message(topic, bytes(message.payload), bool(message.retain), message.qos)
            self._to_loop(self._dispatch, received, identifiers)
        except Exception:
            log.exception("mqtt: could not take a message in")

    # --- the asyncio loop ---------------------------------------------------------------

    def _connected_on_loop(self) -> None:
        if self._stopping:
            return
        self._connected = True
        self._connected_metric(True)
        self._connected_event.set()
        self.health.ok()
        log.info("mqtt: connected to %s:%s", self.settings.host, self.settings.port)
        with self._lock:
            listeners = [box[0] for box in self._listeners]
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("mqtt: on-connect listener %r failed", listener)
        self._put_back_retained()

    def _put_back_retained(self) -> None:
        """Publish again every retained message of ours that is not on its way already.

        The broker may have lost them (restarted without persistence, or died before it
        saved them). Those still waiting, or handed to paho and not acknowledged, reach it
        anyway (paho sends them again), as do those the listeners just published afresh,
        so each topic gets its newest value once."""
        pending = self._outbox.pending()
        again = [(t, kept) for t, kept in self._retained.items() if t not in pending]
        for topic, (data, qos) in again:
            self._send(topic, data, qos, True)
        if again:
            log.debug("mqtt: published %d retained messages again", len(again))

    def _failed(self, error: DeviceUnavailable) -> None:
        if self._stopping:
            return
        self._connected = False
        self._connected_metric(False)
        self._connected_event.clear()
        self.health.failed(error)

    def _connected_metric(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.mqtt_connected.set(1 if up else 0)

    def _disconnected(self, why: str | None) -> None:
        if self._stopping:
            return
        where = f"{self.settings.host}:{self.settings.port}"
        if self._connected:
            message = f"lost the connection to the broker at {where}"
        elif self.health.available:
            # Dropped before the broker accepted us: a TLS listener spoken to in plain text,
            # a port that is no MQTT broker, a CONNACK that never came.
            message = f"the broker at {where} closed the connection before accepting it"
        else:
            return  # after a refusal: the refusal said more, keep it
        self._failed(DeviceUnavailable(f"{message}: {why}" if why else message))

    def _dispatch(self, message: Message, identifiers: list[int]) -> None:
        handlers = self._subscriptions.handlers(message, identifiers)
        if message.oversized is not None and not handlers:
            self._warn_once(
                "oversized",
                message.topic,
                f"dropped a message of {message.oversized} bytes on {message.topic} "
                f"(the limit is {MAX_PAYLOAD} bytes)",
            )
        for handler in handlers:
            try:
                handler(message)
            except InvalidInput as exc:  # a malformed message, not a bug of ours
                self._warn_once("malformed", message.topic, f"{message.topic}: {exc.message}")
            except Exception:
                log.exception("mqtt: handler %r failed on %s", handler, message.topic)

    def _warn_once(self, what: str, topic: str, text: str) -> None:
        """A warning, once per kind and topic (of the first MAX_WARNED); debug after that."""
        key = (what, topic)
        if key in self._warned or len(self._warned) >= MAX_WARNED:
            log.debug("mqtt: again: %s", text)
            return
        self._warned.add(key)
        log.warning("mqtt: %s", text)
