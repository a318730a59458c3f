"""The MQTT connection against a real Mosquitto: status and will, round trips, reconnects,
messages published while the broker is down, credentials, TLS, and hostile payloads.

Nothing here sleeps to wait: tests wait for an event on the bus, a message at a test
subscriber, or the connection's own `wait_connected`, each with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from ambiance.core.events import Event, EventBus
from ambiance.infra.clock import SystemClock
from ambiance.infra.mqtt import (
    MAX_IN_FLIGHT,
    MAX_PACKET,
    MAX_PAYLOAD,
    Message,
    MqttConnection,
    MqttSettings,
)
from tests.helpers import EventLog
from tests.mosquitto import (
    Certificates,
    Mosquitto,
    Subscriber,
    async_read_retained,
)
from tests.mqtt_fixtures import PASSWORD, USER, mqtt_settings

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 5.0


def unavailable(event: Event) -> bool:
    return event.kind == "device.health" and not event.data["available"]


def available(event: Event) -> bool:
    return event.kind == "device.health" and event.data["available"]


class Inbox:
    """Collects what a handler is given, with the thread it ran on, and waits for it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.threads: set[int] = set()
        self._changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self.threads.add(threading.get_ident())
        self._changed.set()

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.messages]

    async def wait_for(self, payload: bytes, timeout: float = TIMEOUT) -> Message:
        async def scan() -> Message:
            while True:
                for message in self.messages:
                    if message.payload == payload:
                        return message
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)


@pytest.fixture
async def conn(mosquitto: Mosquitto) -> AsyncIterator[MqttConnection]:
    """A started connection to the anonymous broker, connected."""
    connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
    async with connection:
        assert await connection.wait_connected(TIMEOUT)
        yield connection


# --- status and last will ------------------------------------------------------------


async def test_connects_and_publishes_online_retained(mosquitto: Mosquitto) -> None:
    with Subscriber(mosquitto, "ambiance/status") as live:
        connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
        async with connection:
            assert await connection.wait_connected(TIMEOUT)
            assert connection.connected
            assert connection.health.available
            await live.async_wait_for("ambiance/status", "online")
            # A subscriber that comes later still learns the service is up.
            assert await async_read_retained(mosquitto, "ambiance/#") == {
                "ambiance/status": b"online"
            }


async def test_clean_stop_leaves_offline_retained(
    conn: MqttConnection, mosquitto: Mosquitto
) -> None:
    await conn.stop()
    assert not conn.connected
    assert await async_read_retained(mosquitto, "ambiance/status") == {
        "ambiance/status": b"offline"
    }
    await conn.stop()  # twice is fine


async def test_last_will_says_offline_when_the_process_dies(mosquitto: Mosquitto) -> None:
    # A service killed with SIGKILL never says goodbye: the broker publishes the will.
    script = textwrap.dedent(
        f"""
        import asyncio
        from ambiance.infra.clock import SystemClock
        from ambiance.core.events import EventBus
        from ambiance.infra.mqtt import MqttConnection, MqttSettings

        async def main():
            settings = MqttSettings(host={mosquitto.host!r}, port={mosquitto.port}, keepalive=5)
            connection = MqttConnection(settings, EventBus(), SystemClock())
            await connection.start()
            print("connected" if await connection.wait_connected(10) else "failed", flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    with Subscriber(mosquitto, "ambiance/status") as live:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, cwd=REPO, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.strip() == b"connected"
            await live.async_wait_for("ambiance/status", "online")
        finally:
            proc.kill()  # SIGKILL: no offline message, no DISCONNECT
            await proc.wait()
        await live.async_wait_for("ambiance/status", "offline")
    assert await async_read_retained(mosquitto, "ambiance/status") == {
        "ambiance/status": b"offline"
    }


# --- publish and subscribe -------------------------------------------------------------


async def test_round_trip_runs_handlers_on_the_loop(conn: MqttConnection) -> None:
    inbox = Inbox()
    conn.subscribe(conn.topic("bedroom", "command", "+"), inbox)
    conn.publish(conn.topic("bedroom", "command", "next"), {"stage": "rest", "n": 1}, qos=1)
    message = await inbox.wait_for(b'{"stage":"rest","n":1}')
    assert message.topic == "ambiance/bedroom/command/next"
    assert message.qos == 1
    assert not message.retain
    assert inbox.threads == {threading.get_ident()}  # the asyncio loop's thread, not paho's


async def test_payload_kinds_and_retained_messages_for_late_subscribers(
    conn: MqttConnection, mosquitto: Mosquitto
) -> None:
    conn.publish("ambiance/a", "text", qos=1, retain=True)
    conn.publish("ambiance/b", b"\x00\xff", qos=1, retain=True)
    conn.publish("ambiance/c", [1, "ü"], qos=1, retain=True)
    conn.publish("ambiance/d", "soon gone", qos=1, retain=True)
    conn.publish("ambiance/d", None, qos=1, retain=True)  # empty: deletes the retained one
    fence = Inbox()
    conn.subscribe("ambiance/fence", fence)
    conn.publish("ambiance/fence", "end", qos=1)
    await fence.wait_for(b"end")  # the broker has everything published before it
    retained = await async_read_retained(mosquitto, "ambiance/+")
    assert retained["ambiance/a"] == b"text"
    assert retained["ambiance/b"] == b"\x00\xff"
    assert retained["ambiance/c"] == '[1,"ü"]'.encode()
    assert "ambiance/d" not in retained


async def test_unsubscribe_and_overlapping_filters(conn: MqttConnection) -> None:
    wide, narrow, gone = Inbox(), Inbox(), Inbox()
    conn.subscribe("ambiance/#", wide)
    conn.subscribe("ambiance/room/+", narrow)
    unsubscribe = conn.subscribe("ambiance/room/lights", gone)
    unsubscribe()
    unsubscribe()  # twice is fine
    conn.publish("ambiance/room/lights", "warm", qos=1)
    conn.publish("ambiance/fence", "end", qos=1)
    await wide.wait_for(b"end")
    # Mosquitto sends one copy per matching subscription; each handler still runs once.
    assert wide.payloads().count(b"warm") == 1
    assert narrow.payloads() == [b"warm"]
    assert gone.payloads() == []


async def test_a_handler_that_raises_does_not_stop_the_others(
    conn: MqttConnection, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(message: Message) -> None:
        raise RuntimeError("boom")

    inbox = Inbox()
    conn.subscribe("ambiance/x", broken)
    conn.subscribe("ambiance/x", inbox)
    conn.publish("ambiance/x", "one", qos=1)
    conn.publish("ambiance/x", "two", qos=1)
    await inbox.wait_for(b"two")
    assert inbox.payloads() == [b"one", b"two"]
    assert (
        sum("handler" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records) == 2
    )


async def test_oversized_payloads_are_dropped_and_handlers_keep_working(
    conn: MqttConnection, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    conn.subscribe("ambiance/big/#", inbox)
    conn.publish("ambiance/big/a", b"x" * (MAX_PAYLOAD + 1), qos=1)  # dropped by us
    conn.publish("ambiance/big/b", b"y" * (MAX_PACKET + 1), qos=1)  # never sent to us
    conn.publish("ambiance/big/a", b"x" * (MAX_PAYLOAD + 1), qos=1)  # warned about once
    conn.publish("ambiance/big/a", b"x" * MAX_PAYLOAD, qos=1)  # at the limit: delivered
    conn.publish("ambiance/big/c", "small", qos=1)
    await inbox.wait_for(b"small")
    assert [len(p) for p in inbox.payloads()] == [MAX_PAYLOAD, 5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"mqtt: dropped a message of {MAX_PAYLOAD + 1} bytes on ambiance/big/a "
                        f"(the limit is {MAX_PAYLOAD} bytes)"]  # fmt: skip


async def test_a_malformed_message_is_one_warning_per_topic_never_a_traceback(
    conn: MqttConnection, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler reads JSON with `Message.json()`: a payload that is not JSON, not UTF-8, or
    nested thirty thousand deep (past the decoder's recursion limit) raises our InvalidInput,
    which the connection logs as one bounded warning per topic; the next message is read."""
    decoded = Inbox()

    def handler(message: Message) -> None:
        message.json("the state")
        decoded(message)

    conn.subscribe("ambiance/device/+", handler)
    deep = b"[" * 30_000 + b"]" * 30_000
    assert len(deep) <= MAX_PAYLOAD
    conn.publish("ambiance/device/a", deep, qos=1)
    conn.publish("ambiance/device/a", b"{not json", qos=1)  # the same topic: not again
    conn.publish("ambiance/device/b", b'{"a": "\xff"}', qos=1)
    conn.publish("ambiance/device/b", b'{"ok": 1}', qos=1)
    await decoded.wait_for(b'{"ok": 1}')
    ours = [r for r in caplog.records if r.name.startswith("ambiance")]
    assert [r.getMessage() for r in ours if r.levelno >= logging.ERROR or r.exc_info] == []
    assert [r.getMessage() for r in ours if r.levelno == logging.WARNING] == [
        "mqtt: ambiance/device/a: the state is nested too deeply",
        "mqtt: ambiance/device/b: the state is not UTF-8 text",
    ]


async def test_oversized_messages_for_a_handler_that_reports_them_are_not_warned_about(
    conn: MqttConnection, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = Inbox()
    conn.subscribe("ambiance/big/cmd", reporter, oversized=True)
    conn.publish("ambiance/big/cmd", b"x" * (MAX_PAYLOAD + 1), qos=1)
    conn.publish("ambiance/big/cmd", "small", qos=1)
    await reporter.wait_for(b"small")
    assert [m.oversized for m in reporter.messages] == [MAX_PAYLOAD + 1, None]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # theirs to say


async def test_on_connect_listeners_run_on_the_loop_and_can_be_removed(
    mosquitto: Mosquitto,
) -> None:
    connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
    threads: list[int] = []
    called = asyncio.Event()

    def listener() -> None:
        threads.append(threading.get_ident())
        called.set()

    def broken() -> None:
        raise RuntimeError("boom")

    connection.on_connect(broken)
    remove = connection.on_connect(listener)
    async with connection:
        await asyncio.wait_for(called.wait(), TIMEOUT)
        assert threads == [threading.get_ident()]
        remove()
        remove()


# --- the broker goes away and comes back ---------------------------------------------------


async def test_subscriptions_and_listeners_survive_a_broker_restart(mosquitto: Mosquitto) -> None:
    bus = EventBus()
    events = EventLog(bus)
    connection = MqttConnection(mqtt_settings(mosquitto), bus, SystemClock())
    inbox = Inbox()
    connections = 0
    reconnected = asyncio.Event()

    def on_connect() -> None:
        nonlocal connections
        connections += 1
        if connections == 2:
            reconnected.set()

    connection.on_connect(on_connect)
    async with connection:
        assert await connection.wait_connected(TIMEOUT)
        connection.subscribe("ambiance/cmd/#", inbox)
        connection.publish("ambiance/cmd/a", "before", qos=1)
        await inbox.wait_for(b"before")

        mosquitto.stop()
        event = await events.wait_for(unavailable, TIMEOUT)
        assert "lost the connection" in event.data["error"]
        assert not connection.connected
        assert not connection.health.available

        mosquitto.start()  # same port, a fresh broker that knows no subscription
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        assert connection.connected
        assert connection.health.available
        assert [e.data["available"] for e in events.events if e.kind == "device.health"] == [
            False,
            True,
        ]  # logged once each way
        # Published on the same connection after the re-subscription: it must come back.
        connection.publish("ambiance/cmd/b", "after", qos=1)
        await inbox.wait_for(b"after")
        retained = await async_read_retained(mosquitto, "ambiance/status")
        assert retained == {"ambiance/status": b"online"}


async def test_a_subscription_sent_as_the_connection_drops_is_not_waited_for(
    mosquitto: Mosquitto,
) -> None:
    """The broker vanishes between paho taking a SUBSCRIBE and our noting its id: that
    SUBSCRIBE will never be acknowledged, so `wait_ready` must not wait for it after the
    reconnect (it once did, for ever: a rare hang at start-up)."""
    connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
    inbox = Inbox()
    dropped = threading.Event()
    real_on_disconnect = connection._on_disconnect

    def on_disconnect(*args: object) -> None:
        real_on_disconnect(*args)  # type: ignore[arg-type]
        dropped.set()

    connection._on_disconnect = on_disconnect  # type: ignore[method-assign]
    async with connection:
        assert await connection.wait_ready(TIMEOUT)
        client = connection._client
        assert client is not None
        real_subscribe = client.subscribe

        def subscribe_then_drop(*args: object, **kwargs: object) -> object:
            result = real_subscribe(*args, **kwargs)  # type: ignore[arg-type]
            client.subscribe = real_subscribe  # type: ignore[method-assign]
            # paho's thread sees the drop before this thread returns to its bookkeeping.
            mosquitto.stop()
            assert dropped.wait(TIMEOUT)
            mosquitto.start()
            return result

        client.subscribe = subscribe_then_drop  # type: ignore[method-assign]
        connection.subscribe("ambiance/late/#", inbox)
        assert await connection.wait_ready(TIMEOUT)
        connection.publish("ambiance/late/x", "arrives", qos=1)
        await inbox.wait_for(b"arrives")


async def test_qos1_published_while_the_broker_is_down_arrives_after_it_returns(
    mosquitto: Mosquitto,
) -> None:
    # paho keeps QoS 1 messages in memory while disconnected and sends them after the
    # reconnect; more of them than its in-flight window (20) must all get through too.
    # Retained messages make the check independent of when the other subscriber connects.
    bus = EventBus()
    events = EventLog(bus)
    connection = MqttConnection(mqtt_settings(mosquitto), bus, SystemClock())
    async with connection:
        assert await connection.wait_connected(TIMEOUT)
        mosquitto.stop()
        await events.wait_for(unavailable, TIMEOUT)
        connection.publish("ambiance/bedroom/state", {"stage": "rest"}, qos=1, retain=True)
        for i in range(50):
            connection.publish(f"ambiance/queued/{i}", str(i), qos=1, retain=True)
        connection.publish("ambiance/bedroom/lost", "qos0", qos=0, retain=True)  # dropped

        mosquitto.start()
        with Subscriber(mosquitto, "ambiance/bedroom/state") as other:
            state = await other.async_wait_for("ambiance/bedroom/state")
            assert state.payload == b'{"stage":"rest"}'
        assert await connection.wait_connected(TIMEOUT)
        fence = Inbox()
        connection.subscribe("ambiance/fence", fence)
        connection.publish("ambiance/fence", "end", qos=1)
        await fence.wait_for(b"end")  # sent after the queued ones: they are all in by now
        retained = await async_read_retained(mosquitto, "ambiance/#")
        assert retained == {
            "ambiance/status": b"online",
            "ambiance/bedroom/state": b'{"stage":"rest"}',
            **{f"ambiance/queued/{i}": str(i).encode() for i in range(50)},
        }


async def test_a_flood_of_retained_state_loses_no_topic(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """A thousand rooms changing stage at once: more messages than any queue in paho
    would hold. Every topic ends with its last value at the broker, none is dropped."""
    connection = MqttConnection(mqtt_settings(mosquitto), EventBus(), SystemClock())
    rooms, changes = 1000, 3  # 1000: what a test subscriber can be sent at once
    async with connection:
        assert await connection.wait_connected(TIMEOUT)
        with caplog.at_level(logging.WARNING, logger="ambiance.infra.mqtt"):
            for change in range(changes):
                for room in range(rooms):
                    connection.publish(
                        f"ambiance/room-{room}/state", {"change": change}, qos=1, retain=True
                    )
            # More than MAX_IN_FLIGHT wait in the outbox: far fewer than were published.
            assert MAX_IN_FLIGHT < len(connection._outbox) <= rooms
            fence = Inbox()
            connection.subscribe("ambiance/fence", fence)
            assert await connection.wait_ready(TIMEOUT)
            connection.publish("ambiance/fence", "end", qos=1)  # after all of them
            await fence.wait_for(b"end", timeout=30)
        assert "dropped" not in caplog.text
        retained = await async_read_retained(mosquitto, "ambiance/+/state")
        assert len(retained) == rooms
        assert set(retained.values()) == {b'{"change":2}'}


async def test_while_the_broker_is_away_retained_messages_keep_only_the_last(
    mosquitto: Mosquitto,
) -> None:
    bus = EventBus()
    events = EventLog(bus)
    connection = MqttConnection(mqtt_settings(mosquitto), bus, SystemClock())
    # Our own subscriptions see what arrives after the restart: on_connect subscribes
    # before paho sends what waited, so nothing can slip past them.
    commands, states = Inbox(), Inbox()
    connection.subscribe("ambiance/commands", commands)
    connection.subscribe("ambiance/bedroom/state", states)
    async with connection:
        assert await connection.wait_ready(TIMEOUT)
        mosquitto.stop()
        await events.wait_for(unavailable, TIMEOUT)
        # Past the in-flight window, so that the rest waits in the outbox.
        for i in range(MAX_IN_FLIGHT):
            connection.publish(f"ambiance/window/{i}", "x", qos=1, retain=True)
        for stage in ("warm", "knead", "rest"):
            connection.publish("ambiance/bedroom/state", {"stage": stage}, qos=1, retain=True)
            connection.publish("ambiance/commands", stage, qos=1)  # not retained: each one
        assert len(connection._outbox) == 1 + 3  # one state, three commands

        mosquitto.start()
        await commands.wait_for(b"rest")
        await states.wait_for(b'{"stage":"rest"}')
        fence = Inbox()
        connection.subscribe("ambiance/fence", fence)
        assert await connection.wait_ready(TIMEOUT)
        connection.publish("ambiance/fence", "end", qos=1)
        await fence.wait_for(b"end")  # after everything else
        assert commands.payloads() == [b"warm", b"knead", b"rest"]
        assert states.payloads() == [b'{"stage":"rest"}']


async def test_every_retained_message_is_put_back_on_a_broker_that_restarted_empty(
    mosquitto: Mosquitto,
) -> None:
    """The broker killed (-9) and a fresh one, without persistence, on the same port: it
    knows none of our retained messages, and nothing of ours changed meanwhile. After the
    reconnect each is there again with its newest value; a cleared one stays cleared."""
    bus = EventBus()
    events = EventLog(bus)
    connection = MqttConnection(mqtt_settings(mosquitto), bus, SystemClock())
    connections = 0
    reconnected = asyncio.Event()

    def on_connect() -> None:
        nonlocal connections
        connections += 1
        if connections == 2:
            reconnected.set()

    connection.on_connect(on_connect)
    fence = Inbox()
    connection.subscribe("ambiance/fence", fence)
    async with connection:
        assert await connection.wait_ready(TIMEOUT)
        connection.publish("ambiance/phones/pixel/dnd", {"state": "off"}, qos=1, retain=True)
        connection.publish("ambiance/phones/pixel/dnd", {"state": "on"}, qos=1, retain=True)
        connection.publish("ambiance/bedroom/music", "play", qos=1, retain=True)
        connection.publish("ambiance/gone/state", "soon cleared", qos=1, retain=True)
        connection.publish("ambiance/gone/state", None, qos=1, retain=True)
        connection.publish("ambiance/command", "not retained", qos=1)
        connection.publish("ambiance/fence", "first", qos=1)
        await fence.wait_for(b"first")  # the broker has everything above

        mosquitto.kill()
        await events.wait_for(unavailable, TIMEOUT)
        mosquitto.start()  # same port, empty
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        connection.publish("ambiance/fence", "second", qos=1)
        await fence.wait_for(b"second")  # after everything put back
        retained = await async_read_retained(mosquitto, "ambiance/#")
        assert retained == {
            "ambiance/status": b"online",
            "ambiance/phones/pixel/dnd": b'{"state":"on"}',
            "ambiance/bedroom/music": b"play",
        }

        # A value changed while the broker is away is the one put back, once.
        with Subscriber(mosquitto, "ambiance/phones/#") as phone:
            await phone.async_wait_for("ambiance/phones/pixel/dnd", '{"state":"on"}')
            mark = len(events.events)
            mosquitto.kill()
            await events.wait_for(unavailable, TIMEOUT, start=mark)
            connection.publish("ambiance/phones/pixel/dnd", {"state": "off"}, qos=1, retain=True)
            mosquitto.start()
            await phone.async_wait_for("ambiance/phones/pixel/dnd", '{"state":"off"}', timeout=10)
            connection.publish("ambiance/fence", "third", qos=1)
            await fence.wait_for(b"third")
            retained = await async_read_retained(mosquitto, "ambiance/phones/#")
            assert retained == {"ambiance/phones/pixel/dnd": b'{"state":"off"}'}
            assert len(phone.matching("ambiance/phones/pixel/dnd", '{"state":"off"}')) == 1


async def test_a_broker_that_is_down_at_start_is_not_an_error(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "later")  # not started yet
    bus = EventBus()
    events = EventLog(bus)
    connection = MqttConnection(mqtt_settings(broker), bus, SystemClock())
    fence = Inbox()
    connection.subscribe("ambiance/fence", fence)  # before start: sent once connected
    try:
        async with connection:
            event = await events.wait_for(unavailable, TIMEOUT)
            assert f"cannot reach the broker at 127.0.0.1:{broker.port}" in event.data["error"]
            assert not await connection.wait_connected(0.05)
            connection.publish("ambiance/early", "queued", qos=1, retain=True)
            broker.start()
            assert await connection.wait_connected(TIMEOUT)
            await events.wait_for(available, TIMEOUT)
            connection.publish("ambiance/fence", "end", qos=1)
            await fence.wait_for(b"end")
            retained = await async_read_retained(broker, "ambiance/#")
            assert retained == {"ambiance/status": b"online", "ambiance/early": b"queued"}
    finally:
        broker.stop()


async def test_without_a_host_the_service_runs_without_mqtt() -> None:
    connection = MqttConnection(MqttSettings(), EventBus(), SystemClock())
    async with connection:
        assert not connection.enabled
        assert not connection.connected
        assert not await connection.wait_connected(0.01)
        connection.publish("ambiance/x", {"a": 1}, qos=1)  # a no-op, not an error
        unsubscribe = connection.subscribe("ambiance/#", Inbox())
        unsubscribe()
        connection.on_connect(lambda: None)()
    await connection.stop()


# --- credentials and TLS -------------------------------------------------------------------


async def test_right_credentials_connect(mosquitto_auth: Mosquitto) -> None:
    settings = mqtt_settings(mosquitto_auth, username=USER, password=PASSWORD)
    async with MqttConnection(settings, EventBus(), SystemClock()) as connection:
        assert await connection.wait_connected(TIMEOUT)


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong"), ("nobody", PASSWORD), (None, None)]
)
async def test_wrong_credentials_give_a_clear_error_and_no_crash(
    mosquitto_auth: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    username: str | None,
    password: str | None,
) -> None:
    bus = EventBus()
    events = EventLog(bus)
    settings = mqtt_settings(mosquitto_auth, username=username, password=password)
    async with MqttConnection(settings, bus, SystemClock()) as connection:
        event = await events.wait_for(unavailable, TIMEOUT)
        error = event.data["error"]
        assert error.startswith("broker refused the connection: ")
        assert "not authorized" in error or "bad user name or password" in error
        assert not connection.connected
        assert not connection.health.available
        connection.publish("ambiance/x", "while refused", qos=1)
        # paho tries again (and is refused again): the health keeps the reason, logged once.
        await mosquitto_auth.async_wait_for_log("not authorised", TIMEOUT, count=2)
    assert len([e for e in events.events if e.kind == "device.health"]) == 1
    assert not any(PASSWORD in r.getMessage() or "wrong" in r.getMessage() for r in caplog.records)


async def test_tls_with_the_brokers_ca(
    mosquitto_tls: Mosquitto, mqtt_certificates: Certificates
) -> None:
    settings = mqtt_settings(mosquitto_tls, ca_file=mqtt_certificates.ca_file)
    assert settings.tls  # a CA file implies TLS
    async with MqttConnection(settings, EventBus(), SystemClock()) as connection:
        assert await connection.wait_connected(TIMEOUT)
        inbox = Inbox()
        connection.subscribe("ambiance/secure", inbox)
        connection.publish("ambiance/secure", "hush", qos=1)
        await inbox.wait_for(b"hush")


async def test_tls_with_a_client_certificate(
    tmp_path: Path, mqtt_certificates: Certificates
) -> None:
    with Mosquitto(
        tmp_path / "mtls", certificates=mqtt_certificates, require_certificate=True
    ) as broker:
        settings = mqtt_settings(
            broker,
            ca_file=mqtt_certificates.ca_file,
            cert_file=mqtt_certificates.client_cert,
            key_file=mqtt_certificates.client_key,
        )
        async with MqttConnection(settings, EventBus(), SystemClock()) as connection:
            assert await connection.wait_connected(TIMEOUT)


async def test_tls_without_the_ca_fails_clearly_and_does_not_crash(
    mosquitto_tls: Mosquitto,
) -> None:
    bus = EventBus()
    events = EventLog(bus)
    settings = mqtt_settings(mosquitto_tls, tls=True)  # the system's CAs do not know ours
    async with MqttConnection(settings, bus, SystemClock()) as connection:
        event = await events.wait_for(unavailable, TIMEOUT)
        assert "TLS with the broker at 127.0.0.1" in event.data["error"]
        assert "certificate verify failed" in event.data["error"]
        assert not connection.connected


async def test_plain_client_on_a_tls_listener_fails_without_crash(mosquitto_tls: Mosquitto) -> None:
    bus = EventBus()
    events = EventLog(bus)
    async with MqttConnection(mqtt_settings(mosquitto_tls), bus, SystemClock()) as connection:
        await events.wait_for(unavailable, TIMEOUT)
        assert not connection.connected


async def test_missing_tls_files_are_a_config_error(
    mosquitto_tls: Mosquitto, tmp_path: Path
) -> None:
    from ambiance.errors import ConfigError

    settings = mqtt_settings(mosquitto_tls, ca_file=tmp_path / "nope.crt")
    connection = MqttConnection(settings, EventBus(), SystemClock())
    with pytest.raises(ConfigError, match="cannot use the TLS files") as caught:
        await connection.start()
    assert "nope.crt" in str(caught.value)
    await connection.stop()


# --- settings ----------------------------------------------------------------------------


def test_settings_defaults_and_topics() -> None:
    settings = MqttSettings()
    assert settings.host is None
    assert settings.port == 1883
    assert settings.resolved_client_id.startswith("ambiance-")
    assert MqttSettings(host="").host is None
    connection = MqttConnection(MqttSettings(base_topic="home/spa"), EventBus(), SystemClock())
    assert connection.topic("bedroom", "state") == "home/spa/bedroom/state"
    assert connection.status_topic == "home/spa/status"


@pytest.mark.parametrize(
    "values",
    [
        {"base_topic": "ambiance/#"},
        {"base_topic": "a/+/b"},
        {"base_topic": "/ambiance"},
        {"base_topic": "ambiance/"},
        {"base_topic": "a//b"},
        {"base_topic": ""},
        {"base_topic": "$SYS"},
        {"keepalive": 4},
        {"keepalive": 3601},
        {"port": 0},
        {"cert_file": "client.crt"},
        {"key_file": "client.key"},
        {"password": "secret"},
        {"reconnect_min": 5, "reconnect_max": 1},
        {"hots": "typo"},
    ],
)
def test_settings_reject(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MqttSettings.model_validate(values)


def test_settings_tls_implied_and_password_hidden() -> None:
    settings = MqttSettings.model_validate(
        {"host": "b", "username": "u", "password": "hunter2", "cert_file": "c", "key_file": "k"}
    )
    assert settings.tls
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
