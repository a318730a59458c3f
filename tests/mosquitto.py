"""A real Mosquitto broker for tests, on a loopback port of its own, and a test subscriber.

`Mosquitto` runs Debian's `/usr/sbin/mosquitto` (package `mosquitto`, which also ships
`mosquitto_passwd`) with a config written into a temporary folder: never port 1883, never a
broker that happens to be running already. `stop()` then `start()` brings the broker back on
the same port, empty (no persistence), which is what a broker restart looks like to a client.

`make_certificates` makes a throwaway CA, a server certificate for 127.0.0.1/localhost and a
client certificate with the `openssl` CLI. `Subscriber` is a separate paho client that collects
messages and lets a test wait for one; `read_retained` reads retained messages as a late
subscriber would.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.ports import free_port, start_on_a_free_port

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
HOST = "127.0.0.1"
START_TIMEOUT = 10.0


# --- certificates --------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")


def _signed(folder: Path, name: str, subject: str, extensions: str) -> None:
    """A P-256 key `<name>.key` and a certificate `<name>.crt` signed by the CA in `folder`."""
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-out", f"{name}.crt", "-extfile", ext,
        cwd=folder,
    )  # fmt: skip


def make_certificates(folder: Path) -> Certificates:
    """A self-signed CA, a server certificate for 127.0.0.1 and localhost, a client certificate.

    The extensions are spelled out (CA basic constraints and key usage, SAN, key identifiers)
    so that strict verifiers accept them too, not only OpenSSL's defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256",
        "-subj", "/CN=ambiance test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=folder,
    )  # fmt: skip
    common = (
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _signed(
        folder,
        "server",
        "/CN=localhost",
        common + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    _signed(folder, "client", "/CN=ambiance-test-client", common + "extendedKeyUsage=clientAuth\n")
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return Certificates(
        ca_file=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
    )


# --- the broker ----------------------------------------------------------------------


class Mosquitto:
    """One Mosquitto process on its own loopback port; `stop()` and `start()` keep the port.

    users: user name -> password; given, anonymous clients are refused.
    certificates: given, the listener speaks TLS only; `require_certificate` then also asks
    clients for a certificate signed by the same CA.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        certificates: Certificates | None = None,
        require_certificate: bool = False,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.host = HOST
        self.port = port if port is not None else free_port()
        # A port picked here may be taken by another process before Mosquitto binds it;
        # then the first start moves to another one (a restart must keep its port).
        self._may_move = port is None
        self.users = dict(users or {})
        self.certificates = certificates
        self.require_certificate = require_certificate
        self.config_file = workdir / "mosquitto.conf"
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()

    # The config -------------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            "log_dest stderr",  # unbuffered, unlike stdout into a pipe
            "log_type all",
            "connection_messages true",
            # Run as root (as in a container), Mosquitto would switch to the `mosquitto` user
            # and could then not read the files in our private temporary folder.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        ]
        if self.users:
            password_file = self.workdir / "passwords"
            password_file.unlink(missing_ok=True)
            for index, (user, password) in enumerate(self.users.items()):
                create = ["-c"] if index == 0 else []
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", *create, str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.certificates is not None:
            lines += [
                f"cafile {self.certificates.ca_file}",
                f"certfile {self.certificates.server_cert}",
                f"keyfile {self.certificates.server_key}",
            ]
            if self.require_certificate:
                lines.append("require_certificate true")
        self.config_file.write_text("\n".join(lines) + "\n")

    # The process ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker and return once it says it runs (its listener is open by then)."""
        start_on_a_free_port(
            functools.partial(self._start, timeout), self._move, self._may_move, "mosquitto"
        )
        self._may_move = False

    def _move(self, port: int) -> None:
        self.port = port
        self._write_config()

    def _start(self, timeout: float) -> None:
        if self.running:
            return
        with self._changed:
            first_line = len(self._lines)
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_output, args=(proc,), name=f"mosquitto-{self.port}", daemon=True
        )
        self._reader.start()

        def ready() -> bool:
            fresh = self._lines[first_line:]
            return proc.poll() is not None or any(
                "mosquitto version" in line and "running" in line for line in fresh
            )

        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                self.stop()
                raise RuntimeError(f"mosquitto did not start in {timeout} s:\n{self.log()}")
        if proc.poll() is not None:
            self._reader.join(timeout)
            raise RuntimeError(f"mosquitto exited with {proc.returncode}:\n{self.log()}")

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        # Drains the pipe for the process's whole life, so Mosquitto never blocks on a full
        # pipe, and wakes `start()` (and `wait_for_log`) at each line.
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        proc.stdout.close()
        with self._changed:
            self._changed.notify_all()

    def stop(self, timeout: float = START_TIMEOUT) -> None:
        """Terminate the broker (SIGTERM) and wait until it has exited."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # A SIGTERM that lands just after the "running" line can be lost (Mosquitto arms its
        # run flag after its handlers), so send it again until the broker goes, then SIGKILL.
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            proc.terminate()
            try:
                proc.wait(0.5)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None

    def kill(self, timeout: float = START_TIMEOUT) -> None:
        """SIGKILL the broker, as in a crash: it says goodbye to no one."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None

    def log(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_log(self, text: str, timeout: float = 5.0, count: int = 1) -> list[str]:
        """Wait until `count` log lines contain `text`; return them."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self._lines if text in line]
            return len(found) >= count

        with self._changed:
            if not self._changed.wait_for(seen, timeout):
                raise TimeoutError(f"not {count} x {text!r} in the mosquitto log:\n{self.log()}")
        return found

    async def async_wait_for_log(
        self, text: str, timeout: float = 5.0, count: int = 1
    ) -> list[str]:
        return await asyncio.to_thread(self.wait_for_log, text, timeout, count)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # For clients --------------------------------------------------------------------

    def client(self, client_id: str | None = None) -> mqtt.Client:
        """A paho client set up for this broker (TLS with its CA, the first user's credentials);
        not yet connected."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self.users:
            user, password = next(iter(self.users.items()))
            client.username_pw_set(user, password)
        if self.certificates is not None:
            client.tls_set(
                ca_certs=str(self.certificates.ca_file),
                certfile=str(self.certificates.client_cert),
                keyfile=str(self.certificates.client_key),
            )
        return client


# --- a test subscriber ---------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode()


class Subscriber:
    """A separate paho client that records every message on its topic filters.

    `wait_for` blocks on a condition variable until a matching message arrives (no sleeping);
    `async_wait_for` does the same from a coroutine without blocking the event loop. The client
    reconnects by itself and subscribes again after a broker restart.
    """

    def __init__(self, broker: Mosquitto, *topic_filters: str, qos: int = 1) -> None:
        self.broker = broker
        self.filters = list(topic_filters)
        self.qos = qos
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = 0  # SUBACKs received since the last connect
        self._client = broker.client()
        self._client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # seconds, floats work
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

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
        with self._changed:
            self._subscribed = 0
        if self.filters:
            client.subscribe([(f, self.qos) for f in self.filters])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._changed:
            self._subscribed += 1
            self._changed.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = Received(message.topic, bytes(message.payload), message.retain, message.qos)
        with self._changed:
            self.messages.append(received)
            self._changed.notify_all()

    def start(self, timeout: float = 5.0) -> Subscriber:
        """Connect, and return once the broker has acknowledged the subscriptions."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self._client.loop_start()
        with self._changed:
            if not self._changed.wait_for(lambda: self._subscribed > 0, timeout):
                raise TimeoutError(f"subscriber not subscribed in {timeout} s")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish from this client and wait until the broker has it (QoS 1) or it is sent."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5.0)

    def matching(self, topic: str, payload: str | bytes | None = None) -> list[Received]:
        want = payload.encode() if isinstance(payload, str) else payload
        with self._changed:
            return [
                m
                for m in self.messages
                if mqtt.topic_matches_sub(topic, m.topic) and (want is None or m.payload == want)
            ]

    def wait_for(
        self,
        topic: str,
        payload: str | bytes | None = None,
        *,
        timeout: float = 5.0,
        predicate: Callable[[Received], bool] | None = None,
    ) -> Received:
        """Wait for a message whose topic matches the filter `topic` (and `payload`, if given)."""
        found: list[Received] = []

        def arrived() -> bool:
            found[:] = [
                m for m in self.matching(topic, payload) if predicate is None or predicate(m)
            ]
            return bool(found)

        with self._changed:
            if not self._changed.wait_for(arrived, timeout):
                seen = [(m.topic, m.payload[:80]) for m in self.messages]
                raise TimeoutError(f"no message on {topic!r} ({payload!r}) in {timeout} s: {seen}")
        return found[0]

    async def async_wait_for(
        self,
        topic: str,
        payload: str | bytes | None = None,
        *,
        timeout: float = 5.0,
        predicate: Callable[[Received], bool] | None = None,
    ) -> Received:
        """`wait_for` from a coroutine: the wait runs in a worker thread, the loop keeps going."""
        return await asyncio.to_thread(
            lambda: self.wait_for(topic, payload, timeout=timeout, predicate=predicate)
        )


def read_retained(broker: Mosquitto, topic_filter: str, timeout: float = 5.0) -> dict[str, bytes]:
    """The retained messages on `topic_filter`, read as a late subscriber would.

    Mosquitto queues a subscription's retained messages when it handles the SUBSCRIBE, so
    once a message that this client publishes after that SUBACK comes back, every retained
    message is already here: an empty answer means there is none, with no waiting it out."""
    marker = f"test-marker/{uuid.uuid4().hex}"
    subscriber = Subscriber(broker, topic_filter).start(timeout)
    try:
        subscriber.filters.append(marker)
        subscriber._client.subscribe(marker, 1)
        deadline = time.monotonic() + timeout
        with subscriber._changed:
            subscriber._changed.wait_for(
                lambda: subscriber._subscribed >= 2, max(0.0, deadline - time.monotonic())
            )
        subscriber.publish(marker, b"end")
        subscriber.wait_for(marker, timeout=max(0.0, deadline - time.monotonic()))
        return {
            m.topic: m.payload
            for m in subscriber.matching(topic_filter)
            if m.retain and m.topic != marker
        }
    finally:
        subscriber.stop()


async def async_read_retained(
    broker: Mosquitto, topic_filter: str, timeout: float = 5.0
) -> dict[str, bytes]:
    return await asyncio.to_thread(read_retained, broker, topic_filter, timeout)
