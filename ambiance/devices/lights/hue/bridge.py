"""The one place that calls a Hue bridge (API v1), with phue as the HTTP client.

phue is blocking, so each call runs in a small thread pool under a timeout; the bridge's
error array is turned into our exceptions (errors.py); light and group commands are
spaced to the bridge's limits. Usernames are cut short in every log line.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import logging
import os
import re
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import phue

from ambiance.devices.lights.hue.errors import (
    BridgeBusy,
    BridgeUnreachable,
    Unauthorized,
    raise_for_errors,
)
from ambiance.devices.lights.hue.state import HueLightReport
from ambiance.devices.outside import Reports
from ambiance.errors import DeviceError
from ambiance.infra.clock import Clock, SystemClock
from ambiance.infra.metrics import Metrics

log = logging.getLogger(__name__)


def redact(username: str | None) -> str:
    """Enough of a username to tell two apart in a log, not enough to use it."""
    return "<none>" if not username else f"{username[:4]}…"


_SECRETS = re.compile(r'(/api/|"username":\s*")([^/"\s]{4})[^/"\s]*')


class _RedactFilter(logging.Filter):
    """phue logs each request's path, which holds the username (and, on pairing, the
    reply that carries a new one); keep only its first characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRETS.sub(r"\1\2…", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _install_redaction() -> None:
    phue_log = logging.getLogger("phue")
    if not any(isinstance(f, _RedactFilter) for f in phue_log.filters):
        phue_log.addFilter(_RedactFilter())


_LIGHT_COMMAND = re.compile(r"^/lights/[^/]+/state$")
_GROUP_COMMAND = re.compile(r"^/groups/[^/]+/action$")


class CommandSpacing:
    """At most `rate` commands a second to one bridge: a command goes out no sooner than
    `1 / rate` seconds after the previous one of its kind *finished*.

    Commands of one kind take turns (an asyncio lock held from the wait through the
    reply), so two rooms on a bridge share the budget. Spacing from the end of the
    previous command, not its start, makes the guarantee hold at the bridge whatever the
    network and thread pool delay: the bridge never sees two of them closer than
    `1 / rate` (a connection refused never reached it, and is not counted). It waits on
    the clock's monotonic time, so a test's fake clock can stand in for the real one.
    """

    def __init__(self, rate: float, *, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive: {rate!r}")
        self.interval = 1.0 / rate
        self.clock = clock
        self._lock = asyncio.Lock()
        self._last_end: float | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            if self._last_end is not None:
                wait = self._last_end + self.interval - self.clock.monotonic()
                if wait > 0:
                    await self.clock.sleep(wait)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or not _never_sent(exc):
            self._last_end = self.clock.monotonic()
        self._lock.release()


def _never_sent(exc: BaseException) -> bool:
    """A command refused at the connection (nothing listens) never reached the bridge:
    it costs the bridge nothing, so the next one need not wait for it."""
    return isinstance(exc, BridgeUnreachable) and isinstance(
        exc.__cause__, ConnectionRefusedError | socket.gaierror
    )


class HueBridge:
    """One Hue bridge, shared by every room on it.

    `request()` is the only way to it. The thread pool is created on first use (or by
    `start()`) and released by `stop()`.

    It protects the bridge as Hue's guidance asks: at most `light_rate` (10) light
    commands (`PUT /lights/<id>/state`) and `group_rate` (1) group commands
    (`PUT /groups/<id>/action`) a second, each kind spaced by `CommandSpacing`. Reads
    are not spaced; at most `max_workers` (2) requests of any kind are in flight.

    One attempt per call: retrying a bridge that is away is the room's coordinator's job
    (ambiance.core.coordinator), with its backoff and the room's health. The one
    exception is a *busy* answer (error 901, or a reply that is not JSON): the bridge is
    up but stumbled, so the request is sent again at once, at most `retries` times
    (the `retries` setting of a Hue room). That is no second retry layer: it has no
    timing of its own (a command still waits its turn under the spacing), it never
    waits out an outage, and the call still ends in one success or one error.
    """

    def __init__(
        self,
        address: str,
        username: str | None,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        data_dir: Path | None = None,
        max_workers: int = 2,
        light_rate: float = 10.0,
        group_rate: float = 1.0,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.address = address  # "host" or "host:port"
        self.metrics = metrics
        self.username = username
        self.timeout = timeout
        self.retries = retries  # busy answers sent again at once (see above)
        self.clock = clock or SystemClock()
        self.data_dir = data_dir
        self.max_workers = max_workers  # few: the bridge itself handles ~10 commands/s
        self._executor: ThreadPoolExecutor | None = None
        self._client: Any = None  # phue.Bridge
        self.light_commands = CommandSpacing(light_rate, clock=self.clock)
        self.group_commands = CommandSpacing(group_rate, clock=self.clock)
        # What the bridge says of its lights, checked before it is trusted (shared by the
        # rooms and distractions on this bridge, so each problem is said once).
        self._light_reports = Reports(HueLightReport, f"Hue bridge at {address}")

    async def start(self) -> None:
        self._ensure_started()

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # A call abandoned by its timeout may still sit in phue's own 10 s socket
            # timeout; don't wait for it.
            executor.shutdown(wait=False, cancel_futures=True)

    def _ensure_started(self) -> ThreadPoolExecutor:
        if self._executor is None:
            _install_redaction()
            self._executor = ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix=f"hue-{self.address}"
            )
        if self._client is None:
            # With both ip and username given, phue's constructor does no I/O: it neither
            # reads ~/.python_hue nor tries to register. We build every path ourselves,
            # so phue never needs (nor logs) the real username.
            config = self.data_dir / "phue.json" if self.data_dir is not None else os.devnull
            self._client = phue.Bridge(
                ip=self.address, username="none", config_file_path=str(config)
            )
        return self._executor

    def light_state(self, light_id: str, light: Any) -> dict[str, Any]:
        """The valid fields of one light's `state`, from a `GET /lights` reply: the ones
        not valid are left out (and said once), so nothing trusts or restores them."""
        state = light.get("state") if isinstance(light, dict) else None
        if not isinstance(state, dict):
            return {}
        name = light.get("name")
        device = f"light {light_id} ({str(name)[:40]})" if name else f"light {light_id}"
        return self._light_reports.valid(device, state)

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        if path == "/api" or path.startswith("/api/"):
            return path  # absolute, e.g. POST /api to pair
        if not self.username:
            raise Unauthorized(
                f"no username for the Hue bridge at {self.address}: run `ambiance pair`"
            )
        return f"/api/{self.username}{path}"

    async def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Send one request; return the parsed reply or raise a HueError.

        `path` is relative to /api/<username> ("/groups/1/action"); a path that starts
        with /api is sent as it is. An unreachable bridge and every refusal are raised
        at once; a busy answer is sent again at once up to `retries` times. Light and
        group commands (each send) wait for their turn under the bridge's limits.
        """
        url = self._url(path)
        payload = dict(body) if body is not None else None
        spacing = self._spacing(method, path)
        kind = _kind(method, spacing is self.light_commands, spacing is self.group_commands)
        attempt = 0
        while True:
            if self.metrics is not None:  # each send: what the bridge sees
                self.metrics.bridge_requests.inc(bridge=self.address, method=method, kind=kind)
            try:
                if spacing is None:
                    reply = await self._send(method, url, payload)
                else:
                    async with spacing:
                        reply = await self._send(method, url, payload)
                return raise_for_errors(reply)
            except DeviceError as exc:
                if self.metrics is not None:
                    self.metrics.bridge_errors.inc(bridge=self.address, error=type(exc).__name__)
                if not isinstance(exc, BridgeBusy) or attempt >= self.retries:
                    raise
                attempt += 1
                log.info(
                    "Hue bridge %s: %s; sending it again (%d/%d)",
                    self.address,
                    exc,
                    attempt,
                    self.retries,
                )

    def _spacing(self, method: str, path: str) -> CommandSpacing | None:
        if method != "PUT":
            return None
        if _LIGHT_COMMAND.match(path):
            return self.light_commands
        if _GROUP_COMMAND.match(path):
            return self.group_commands
        return None

    async def _send(self, method: str, url: str, payload: dict[str, Any] | None) -> Any:
        executor = self._ensure_started()
        call = functools.partial(self._client.request, method, url, payload)
        shown = url.replace(self.username, redact(self.username)) if self.username else url
        log.debug("%s %s %s", method, shown, payload if payload is not None else "")
        try:
            # asyncio.timeout, not wait_for: wait_for's own waiter costs a turn of the
            # loop between the reply and the caller, with the loop's other work in it.
            # The loop's time, not the clock's: it bounds a real socket in a real thread.
            async with asyncio.timeout(self.timeout):
                return await asyncio.get_running_loop().run_in_executor(executor, call)
        except TimeoutError as exc:  # ours, or the socket's inside phue
            raise BridgeUnreachable(
                f"the Hue bridge at {self.address} did not answer within {self.timeout:g} s"
            ) from exc
        except phue.PhueRequestTimeout as exc:
            raise BridgeUnreachable(f"the Hue bridge at {self.address} timed out") from exc
        except ConnectionError as exc:  # refused, reset, aborted, closed without a reply
            raise BridgeUnreachable(
                f"cannot reach the Hue bridge at {self.address}: {exc}"
            ) from exc
        except http.client.HTTPException as exc:  # not HTTP at all
            raise BridgeBusy(
                f"the Hue bridge at {self.address} sent a malformed reply ({exc!r})"
            ) from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: an HTML page, a 503
            raise BridgeBusy(
                f"the Hue bridge at {self.address} sent a reply that is not JSON"
            ) from exc
        except OSError as exc:  # unknown host, no route
            raise BridgeUnreachable(
                f"cannot reach the Hue bridge at {self.address}: {exc}"
            ) from exc


def _kind(method: str, light_command: bool, group_command: bool) -> str:
    """The `kind` label of a bridge request: light / group command, read, or other write."""
    if light_command:
        return "light_command"
    if group_command:
        return "group_command"
    return "read" if method == "GET" else "other"
