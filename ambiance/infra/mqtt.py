"""The one MQTT connection of the service (paho-mqtt 2, callback API version 2).

paho runs the network in a thread of its own (`connect_async` + `loop_start`): it connects in
the background, reconnects by itself with a growing delay, and keeps QoS 1/2 messages
published while the broker is away in memory until the next connection. Everything that
reaches the rest of the service from that thread (message handlers, on-connect listeners,
health changes, which publish on the synchronous event bus) is handed to the asyncio loop
with `call_soon_threadsafe`, so no other module ever runs on paho's thread.

Protocol: MQTT 5. It gives three things this service uses:
- Maximum Packet Size in CONNECT: the broker never sends us a packet over `MAX_PACKET`, so
  a runaway publisher cannot make us read megabytes (smaller oversized payloads, up to
  `MAX_PAYLOAD`, are still dropped here, with a warning);
- subscription identifiers: brokers (Mosquitto does) send one copy of a message per matching
  subscription, so with overlapping filters (`a/#` and `a/b`) a plain topic match would run
  a handler twice; each copy names its subscription, and we run only that one's handlers;
- reason codes that say why a broker refused us ("Not authorized").
Every maintained broker speaks MQTT 5 (Mosquitto since 1.6, EMQX, HiveMQ, Home Assistant's
add-on).

Topics: the last will and the status `<base>/status` = `online` | `offline`, QoS 1, retained.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import ssl
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ambiance.core.events import EventBus
from ambiance.core.health import Availability
from ambiance.errors import ConfigError, DeviceUnavailable
from ambiance.infra.clock import Clock
from ambiance.infra.metrics import Metrics

log = logging.getLogger(__name__)
_paho_log = logging.getLogger(f"{__name__}.paho")

# A handler never sees a payload bigger than this: larger ones are dropped with a warning.
MAX_PAYLOAD = 64 * 1024
# Sent to the broker as our Maximum Packet Size: it drops (for us only) anything bigger, so
# even a gigabyte-sized publish costs this service nothing.
MAX_PACKET = 1024 * 1024
# QoS 1/2 messages handed to paho and not yet acknowledged by the broker. Beyond this they
# wait in our own outbox, where a retained message replaces the one before it on its topic:
# a thousand rooms changing stage at once, or a broker away for an hour, then cost one
# message per topic instead of a queue that overflows and drops the newest state.
MAX_IN_FLIGHT = 100
# Messages that are not retained (commands to devices) kept in the outbox at most, so that
# a broker that is down for days cannot grow the service without end; they come at a few
# per minute, far below this.
MAX_QUEUED = 1000
# How long `stop()` waits for the broker to acknowledge the `offline` status.
STOP_TIMEOUT = 2.0

ONLINE = "online"
OFFLINE = "offline"

Payload = str | bytes | dict[str, Any] | list[Any] | None


# --- settings ------------------------------------------------------------------------


class MqttSettings(BaseModel):
    """How to reach the broker. No host: the service runs without MQTT."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(default=None, description="None: no broker, MQTT is off.")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = Field(
        default=None, description="The CA that signed the broker's certificate; None: the system's."
    )
    cert_file: Path | None = Field(
        default=None, description="A client certificate (with key_file)."
    )
    key_file: Path | None = None
    tls_insecure: bool = Field(
        default=False, description="Skip the host name check of the broker's certificate."
    )
    client_id: str | None = Field(default=None, description="None: ambiance-<hostname>.")
    keepalive: int = Field(default=60, ge=5, le=3600)
    base_topic: str = "ambiance"
    discovery_prefix: str = Field(
        default="homeassistant", description="Home Assistant's MQTT discovery prefix."
    )
    reconnect_min: float = Field(default=0.5, gt=0, le=3600)
    reconnect_max: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        # An empty AMBIANCE_MQTT__HOST= means "no broker", not a broker called "".
        return value.strip() or None if value is not None else None

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _base_topic(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if "+" in value or "#" in value or "\0" in value:
            raise ValueError(f"{value!r} must not contain the wildcards + or #")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(f"{value!r} must not start or end with '/' nor have empty levels")
        if value.startswith("$"):
            raise ValueError(f"{value!r} must not start with '$' (broker topics)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if self.ca_file is not None or self.cert_file is not None:
            self.tls = True  # a CA or a client certificate only make sense over TLS
        return self

    @property
    def resolved_client_id(self) -> str:
        return self.client_id or f"ambiance-{socket.gethostname()}"


# --- messages and subscriptions ------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A message as handlers see it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    # Over MAX_PAYLOAD: the payload is left out (b"") and only handlers that asked for
    # oversized messages see it, so that a door can say "too large" to the sender.
    oversized: int | None = None  # the size in bytes, when oversized

    @property
    def text(self) -> str:
        """The payload as text (undecodable bytes replaced)."""
        return self.payload.decode("utf-8", errors="replace")


Handler = Callable[[Message], None]
Listener = Callable[[], None]


@dataclass(frozen=True)
class _Outgoing:
    """A QoS 1/2 message waiting in the outbox."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(eq=False)  # compared by identity: the same handler may be registered twice
class _Registration:
    handler: Handler
    qos: int
    oversized: bool = False


@dataclass(eq=False)
class _Filter:
    """One topic filter at the broker, shared by every handler registered on it."""

    identifier: int  # the MQTT 5 subscription identifier
    registrations: list[_Registration] = field(default_factory=list)

    @property
    def qos(self) -> int:
        return max(r.qos for r in self.registrations)


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it untyped


def _log_paho(client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
    _paho_log.debug("%s", text)


def encode_payload(payload: Payload) -> bytes:
    """Text as UTF-8, dicts and lists as compact JSON, None as an empty payload."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
        # Guards the registries below: they are read on paho's thread (on_connect) and
        # changed from the service's.
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
        self._filters: dict[str, _Filter] = {}
        self._next_identifier = 1
        self._listeners: list[list[Listener]] = []  # boxed, so removal is by identity
        self._warned_topics: set[str] = set()
        # QoS 1/2 messages not yet handed to paho, oldest first: keyed by topic when
        # retained (a newer one replaces it), by a number otherwise. Loop thread only.
        self._outbox: OrderedDict[str | int, _Outgoing] = OrderedDict()
        self._unkeyed = itertools.count()
        self._queued = 0  # messages in the outbox that are not retained
        self._in_flight: set[int] = set()  # paho message ids not yet acknowledged
        # Acknowledgements from paho's thread, handed to the loop in batches: one wake-up
        # of the loop per batch, not per message (with many rooms that was most of it).
        self._acks: deque[int] = deque()
        self._acks_scheduled = False
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
        self._acks.clear()
        self._acks_scheduled = False
        self._stopping = False

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.resolved_client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        # A callback that raises must never end paho's network thread; ours catch their own
        # errors, this is the net below them.
        client.suppress_exceptions = True
        if _paho_log.isEnabledFor(logging.DEBUG):
            # paho's own log, packet by packet, for troubleshooting. Not `enable_logger`: that
            # reports every dropped socket at ERROR level, which the health already says once.
            client.on_log = _log_paho
        # The will travels in the CONNECT packet, so it must be set before connecting; the
        # broker publishes it when we vanish without a DISCONNECT (crash, kill, cut cable).
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            self._set_tls(client)
        # paho types the delays as int, but uses them as plain seconds: fractions work, and
        # tests rely on them to reconnect within a fraction of a second.
        client.reconnect_delay_set(
            cast(int, settings.reconnect_min), cast(int, settings.reconnect_max)
        )
        # No limit in paho: our outbox bounds what reaches it (MAX_IN_FLIGHT).
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish

        properties = _properties(PacketTypes.CONNECT)
        properties.MaximumPacketSize = MAX_PACKET
        # Clean start on every connection, no session kept at the broker: commands sent
        # while we were away are stale, and on_connect subscribes afresh anyway.
        client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive,
            clean_start=True,
            properties=properties,
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

    def _set_tls(self, client: mqtt.Client) -> None:
        settings = self.settings
        files = [f for f in (settings.ca_file, settings.cert_file, settings.key_file) if f]
        try:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            # A missing or broken certificate file will not fix itself by retrying. ssl's
            # errors do not name the file, so the message does.
            names = ", ".join(str(f) for f in files) or "the system's CA store"
            raise ConfigError([f"mqtt: cannot use the TLS files ({names}): {exc}"]) from None
        if settings.tls_insecure:
            client.tls_insecure_set(True)

    async def stop(self) -> None:
        """Publish `offline` (retained), disconnect cleanly and stop paho's thread."""
        if self._client is None:
            return
        self._stopping = True  # first: paho's callbacks from now on are the shutdown's
        client = self._client
        if client.is_connected():
            self._pump(limit=None)  # what still waits goes out before `offline`
        self._client = None
        self._outbox.clear()
        self._in_flight.clear()
        self._queued = 0
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
        client = self._client
        if client is None:
            log.debug("mqtt: not started, dropped a message to %s", topic)
            return
        if qos == 0:
            info = client.publish(topic, data, qos=0, retain=retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                log.debug("mqtt: not connected, dropped a QoS 0 message to %s", topic)
            return
        message = _Outgoing(topic, data, qos, retain)
        if retain:
            # Replaces a waiting one, and goes after everything published before it, as
            # it would have without the wait.
            self._outbox.pop(topic, None)
            self._outbox[topic] = message
        elif self._queued >= MAX_QUEUED:
            log.warning(
                "mqtt: %d messages already wait for the broker; dropped one to %s",
                MAX_QUEUED,
                topic,
            )
            return
        else:
            self._outbox[next(self._unkeyed)] = message
            self._queued += 1
        self._pump()

    def _pump(self, limit: int | None = MAX_IN_FLIGHT) -> None:
        """Hand waiting messages to paho while fewer than `limit` await the broker."""
        client = self._client
        if client is None:
            return
        while self._outbox and (limit is None or len(self._in_flight) < limit):
            key, message = self._outbox.popitem(last=False)
            if isinstance(key, int):
                self._queued -= 1
            info = client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            # NO_CONN: paho keeps it and sends it after the reconnect.
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self._in_flight.add(info.mid)
            else:
                log.warning("mqtt: could not send a message to %s: %s", message.topic, info.rc)

    def _acknowledged(self) -> None:
        # The flag first: an ack appended from now on schedules another call.
        self._acks_scheduled = False
        acks = self._acks
        while acks:
            self._in_flight.discard(acks.popleft())
        self._pump()

    # --- subscribing ------------------------------------------------------------------

    def subscribe(
        self, topic_filter: str, handler: Handler, qos: int = 1, *, oversized: bool = False
    ) -> Callable[[], None]:
        """Call `handler` on the asyncio loop for each message on `topic_filter` (wildcards
        allowed), from now on and after every reconnect. Returns the unsubscribe function.

        With `oversized`, the handler also hears of messages over MAX_PAYLOAD (with an
        empty payload and `Message.oversized` set to the size)."""
        if not topic_filter:
            raise ValueError("empty topic filter")
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos}")
        registration = _Registration(handler, qos, oversized)
        with self._lock:
            entry = self._filters.get(topic_filter)
            if entry is None:
                entry = _Filter(self._next_identifier)
                self._next_identifier += 1
                self._filters[topic_filter] = entry
            old_qos = entry.qos if entry.registrations else -1
            entry.registrations.append(registration)
            send = entry.qos > old_qos  # a new filter, or one that now needs a higher QoS
        if send:
            self._send_subscribe(topic_filter, entry)

        def unsubscribe() -> None:
            with self._lock:
                current = self._filters.get(topic_filter)
                if current is None or registration not in current.registrations:
                    return
                current.registrations.remove(registration)
                if current.registrations:
                    return
                del self._filters[topic_filter]
            client = self._client
            if client is not None:
                client.unsubscribe(topic_filter)  # NO_CONN is fine: nothing to undo then

        return unsubscribe

    def _send_subscribe(self, topic_filter: str, entry: _Filter) -> None:
        client = self._client
        # Only on an accepted connection: paho would queue a SUBSCRIBE made while it is
        # still connecting ahead of its CONNECT, and the broker drops a client whose first
        # packet is not CONNECT. on_connect sends every filter once the broker accepts us
        # (paho marks the connection accepted before it calls on_connect, so a filter
        # added meanwhile is sent by one side or the other, at worst by both).
        if client is None or not client.is_connected():
            return
        with self._lock:
            epoch = self._epoch
        properties = _properties(PacketTypes.SUBSCRIBE)
        properties.SubscriptionIdentifier = entry.identifier
        # One SUBSCRIBE per filter: the identifier is a property of the whole packet.
        result, mid = client.subscribe(
            topic_filter, options=SubscribeOptions(qos=entry.qos), properties=properties
        )
        if result == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
            with self._lock:
                if epoch != self._epoch:
                    # The connection dropped (and maybe came back) while we sent: that
                    # SUBSCRIBE will never be acknowledged, and on_connect sends it anew.
                    return
                if mid in self._early_acks:
                    self._early_acks.discard(mid)
                else:
                    self._unacked.add(mid)
            self._to_loop(self._subscriptions_changed)

    def _subscriptions_changed(self) -> None:
        with self._lock:
            settled = not self._unacked
        if settled:
            self._subscribed.set()
        else:
            self._subscribed.clear()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until connected and every subscription is acknowledged by the broker, so
        that a message published from now on reaches our handlers; False on timeout."""
        if not await self.wait_connected(timeout):
            return False
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
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
            with self._lock:
                self._new_epoch()
                filters = list(self._filters.items())
            for topic_filter, entry in filters:
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
        with self._lock:
            self._new_epoch()
        self._to_loop(self._subscriptions_changed)
        # paho names a dropped socket "Unspecified error"; only a DISCONNECT packet from the
        # broker carries a reason worth showing.
        why = str(reason).lower() if flags.is_disconnect_packet_from_server else None
        self._to_loop(self._disconnected, why)

    def _new_epoch(self) -> None:
        """Forget the SUBSCRIBEs of the connection before (call with `_lock` held)."""
        self._epoch += 1
        self._unacked.clear()
        self._early_acks.clear()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.warning("mqtt: the broker refused a subscription: %s", reason)
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)
        self._to_loop(self._subscriptions_changed)

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
        self._acks.append(mid)
        if not self._acks_scheduled:
            self._acks_scheduled = True
            self._to_loop(self._acknowledged)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
            size = len(message.payload)
            identifiers: list[int] = []
            if message.properties is not None:
                identifiers = list(getattr(message.properties, "SubscriptionIdentifier", []))
            if size > MAX_PAYLOAD:
                self._warn_oversized(topic, size)
                received = Message(topic, b"", bool(message.retain), message.qos, oversized=size)
            else:
                received = Message(topic, bytes(message.payload), bool(message.retain), message.qos)
            self._to_loop(self._dispatch, received, identifiers)
        except Exception:
            log.exception("mqtt: could not take a message in")

    def _warn_oversized(self, topic: str, size: int) -> None:
        # Once per topic (of the first hundred): a publisher stuck in a loop must not flood
        # the log either.
        if topic in self._warned_topics or len(self._warned_topics) >= 100:
            log.debug("mqtt: dropped another oversized message (%d bytes) on %s", size, topic)
            return
        self._warned_topics.add(topic)
        log.warning(
            "mqtt: dropped a message of %d bytes on %s (the limit is %d bytes)",
            size,
            topic,
            MAX_PAYLOAD,
        )

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
            handlers = [
                r.handler
                for f in matched
                for r in f.registrations
                if message.oversized is None or r.oversized
            ]
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("mqtt: handler %r failed on %s", handler, message.topic)
