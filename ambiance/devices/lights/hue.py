"""Philips Hue lights through the v1 API, with phue as the HTTP client.

`HueBridge` is the one place that calls the bridge: phue is blocking, so each call runs
in a small thread pool under a timeout, is retried with backoff while the bridge is
unreachable or busy, and has the bridge's error array (which arrives inside an HTTP 200)
turned into our exceptions. `HueLights` is one room (a Hue group) on top of it:
one group command per scene change, an exact per-light snapshot and restore.
`pair()` gets a username from the link button; `HueCredentials` keeps it.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import logging
import os
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import phue

from ambiance.devices.lights.base import (
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
from ambiance.errors import ConfigError, DeviceError, DeviceUnavailable
from ambiance.infra.jsonfile import write_json_atomic
from ambiance.infra.metrics import Metrics

log = logging.getLogger("ambiance.devices.lights.hue")

Sleep = Callable[[float], Awaitable[None]]

# --- errors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HueErrorInfo:
    """One entry of the bridge's error array."""

    type: int
    address: str
    description: str


class HueError(DeviceError):
    """The bridge refused (part of) a request. `errors` holds every error it reported,
    `successes` the parts that did succeed, so a caller can judge a partial success."""

    code = "hue_error"

    def __init__(
        self,
        message: str,
        *,
        errors: Iterable[HueErrorInfo] = (),
        successes: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.errors = tuple(errors)
        self.successes = tuple(successes)
        super().__init__(message, detail=[asdict(e) for e in self.errors] or None)


class Unauthorized(HueError):
    """Error 1: the bridge does not know this username (never paired, or removed)."""

    code = "hue_unauthorized"


class ResourceNotAvailable(HueError):
    """Error 3: no such light or group."""

    code = "hue_not_available"


class InvalidValue(HueError):
    """Error 7: a value out of range or of the wrong type."""

    code = "hue_invalid_value"


class LinkButtonNotPressed(HueError):
    """Error 101: pairing needs the link button pressed in the last 30 s."""

    code = "hue_link_button"


class DeviceOff(HueError):
    """Error 201: bri/ct/colour cannot be set on a light that is off."""

    code = "hue_device_off"


class BridgeUnreachable(HueError, DeviceUnavailable):
    """Connection refused, reset or timed out."""

    code = "hue_unreachable"


class BridgeBusy(HueError, DeviceUnavailable):
    """Error 901, or a reply that is not JSON (an HTML error page, a 503, garbage):
    the bridge is overloaded or rebooting; worth retrying later."""

    code = "hue_busy"


ERRORS: dict[int, type[HueError]] = {
    1: Unauthorized,
    3: ResourceNotAvailable,
    7: InvalidValue,
    101: LinkButtonNotPressed,
    201: DeviceOff,
    901: BridgeBusy,
}


def raise_for_errors(result: Any) -> Any:
    """Return `result`, or raise the mapped exception of its first error.

    Writes answer with a list of {"success": ...} / {"error": ...}; reads answer with
    the resource itself, or with such a list when they fail (e.g. unauthorized user).
    """
    if not isinstance(result, list):
        return result
    errors: list[HueErrorInfo] = []
    successes: list[Mapping[str, Any]] = []
    for item in result:
        if not isinstance(item, dict):
            continue
        if isinstance(error := item.get("error"), dict):
            errors.append(
                HueErrorInfo(
                    type=int(error.get("type", 0)),
                    address=str(error.get("address", "")),
                    description=str(error.get("description", "")),
                )
            )
        elif isinstance(success := item.get("success"), dict):
            successes.append(success)
    if not errors:
        return result
    first = errors[0]
    cls = ERRORS.get(first.type, HueError)
    message = f"{first.description} ({first.address}, error {first.type})"
    if len(errors) > 1:
        message += f" and {len(errors) - 1} more"
    raise cls(message, errors=errors, successes=successes)


# --- the bridge ------------------------------------------------------------------------


def _redact(username: str | None) -> str:
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


Clock = Callable[[], float]

_LIGHT_COMMAND = re.compile(r"^/lights/[^/]+/state$")
_GROUP_COMMAND = re.compile(r"^/groups/[^/]+/action$")


class CommandSpacing:
    """At most `rate` commands a second to one bridge: a command goes out no sooner than
    `1 / rate` seconds after the previous one of its kind *finished*.

    Commands of one kind take turns (an asyncio lock held from the wait through the
    reply), so two rooms on a bridge share the budget. Spacing from the end of the
    previous command, not its start, makes the guarantee hold at the bridge whatever the
    network and thread pool delay: the bridge never sees two of them closer than
    `1 / rate` (a connection refused never reached it, and is not counted). The clock
    (monotonic) and sleep are injectable for tests.
    """

    def __init__(
        self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive: {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last_end: float | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            if self._last_end is not None:
                wait = self._last_end + self.interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or not _never_sent(exc):
            self._last_end = self._clock()
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
    """

    def __init__(
        self,
        address: str,
        username: str | None,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        data_dir: Path | None = None,
        max_workers: int = 2,
        light_rate: float = 10.0,
        group_rate: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.address = address  # "host" or "host:port"
        self.metrics = metrics
        self.username = username
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.data_dir = data_dir
        self.max_workers = max_workers  # few: the bridge itself handles ~10 commands/s
        self._executor: ThreadPoolExecutor | None = None
        self._client: Any = None  # phue.Bridge
        self.light_commands = CommandSpacing(light_rate, clock=clock, sleep=sleep)
        self.group_commands = CommandSpacing(group_rate, clock=clock, sleep=sleep)

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
        with /api is sent as it is. Unreachable and busy bridges are retried with
        exponential backoff and jitter; everything else is raised at once. Light and
        group commands (each attempt) wait for their turn under the bridge's limits.
        """
        url = self._url(path)
        payload = dict(body) if body is not None else None
        spacing = self._spacing(method, path)
        kind = _kind(method, spacing is self.light_commands, spacing is self.group_commands)
        attempt = 0
        while True:
            if self.metrics is not None:  # each attempt: what the bridge sees
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
                if not isinstance(exc, DeviceUnavailable) or attempt >= self.retries:
                    raise
                delay = self.backoff * 2**attempt * random.uniform(0.5, 1.5)
                attempt += 1
                log.info(
                    "Hue bridge %s: %s; retry %d/%d in %.2f s",
                    self.address,
                    exc,
                    attempt,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)

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
        shown = url.replace(self.username, _redact(self.username)) if self.username else url
        log.debug("%s %s %s", method, shown, payload if payload is not None else "")
        try:
            # asyncio.timeout, not wait_for: wait_for's own waiter costs a turn of the
            # loop between the reply and the caller, with the loop's other work in it.
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


# --- one room ----------------------------------------------------------------------------


def _ct_range(light: Mapping[str, Any]) -> tuple[int, int] | None:
    ct = light.get("capabilities", {}).get("control", {}).get("ct")
    if isinstance(ct, dict) and "min" in ct and "max" in ct:
        return int(ct["min"]), int(ct["max"])
    return None


def _colour(state: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that reproduce a light's colour exactly, by its colormode."""
    mode = state.get("colormode")
    if mode == "xy" and "xy" in state:
        return {"xy": list(state["xy"])}
    if mode == "hs" and "hue" in state and "sat" in state:
        return {"hue": state["hue"], "sat": state["sat"]}
    if "ct" in state and mode in ("ct", None):
        return {"ct": state["ct"]}
    return {}


def _resources(reply: Any, bridge: HueBridge, what: str) -> dict[str, Any]:
    """A GET /lights or /groups reply, which must be an object of objects; anything else
    (JSON, but not what a bridge sends) means a bridge in a bad way: busy, retried."""
    if isinstance(reply, dict) and all(isinstance(v, dict) for v in reply.values()):
        return reply
    raise BridgeBusy(f"the Hue bridge at {bridge.address} sent {what} in a shape it never sends")


class HueLights(SnapshotsAsJson):
    """The lights of one room: one Hue group on a (shared) bridge."""

    kind = "hue"

    def __init__(self, bridge: HueBridge, group: str, *, sleep: Sleep = asyncio.sleep) -> None:
        self.bridge = bridge
        self.group = group  # a group name or numeric id, as the config says
        self._sleep = sleep  # waits out a restore's fade; tests pass a fake
        self.group_id: str | None = None
        self.light_ids: tuple[str, ...] = ()
        self.ct_range: tuple[int, int] | None = None  # widest across the group's lights

    async def start(self) -> None:
        groups = _resources(await self.bridge.request("GET", "/groups"), self.bridge, "groups")
        group_id = self._find_group(groups)
        self.group_id = group_id
        self.light_ids = tuple(str(i) for i in groups[group_id].get("lights", []))
        self._learn(await self._lights())
        log.info(
            "Hue group %r is %s with lights %s",
            self.group,
            group_id,
            ", ".join(self.light_ids) or "none",
        )

    async def stop(self) -> None:
        return None  # the bridge is shared; its owner stops it

    def _find_group(self, groups: Mapping[str, Any]) -> str:
        if self.group in groups:
            return self.group
        named = [gid for gid, g in groups.items() if g.get("name") == self.group]
        if not named:  # "bedroom" for "Bedroom", if that is unambiguous
            wanted = self.group.casefold()
            named = [gid for gid, g in groups.items() if str(g.get("name")).casefold() == wanted]
        if len(named) == 1:
            return named[0]
        known = ", ".join(f"{gid} {g.get('name')!r}" for gid, g in sorted(groups.items()))
        reason = "several groups are" if named else "no group is"
        raise ResourceNotAvailable(
            f"{reason} named {self.group!r} on the Hue bridge at {self.bridge.address}"
            f" (known groups: {known or 'none'})"
        )

    async def _ensure_started(self) -> str:
        if self.group_id is None:
            await self.start()
        assert self.group_id is not None
        return self.group_id

    async def _lights(self) -> dict[str, Any]:
        """One GET /lights, filtered to this room's lights (in the group's order)."""
        every = _resources(await self.bridge.request("GET", "/lights"), self.bridge, "lights")
        return {i: every[i] for i in self.light_ids if i in every}

    def _learn(self, lights: Mapping[str, Any]) -> None:
        ranges = [r for r in map(_ct_range, lights.values()) if r is not None]
        # The group command takes one ct; the bridge clamps it into each light's own
        # range, so asking within the widest range lets every light go as far as it can.
        self.ct_range = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None

    async def read(self) -> list[LightState]:
        await self._ensure_started()
        lights = await self._lights()
        self._learn(lights)
        out = []
        for light_id, light in lights.items():
            state = light.get("state", {})
            ct = state.get("ct")
            in_ct = ct is not None and state.get("colormode", "ct") == "ct"
            out.append(
                LightState(
                    id=light_id,
                    name=str(light.get("name", light_id)),
                    on=bool(state.get("on")),
                    brightness=bri_to_percent(state["bri"]) if "bri" in state else None,
                    kelvin=mired_to_kelvin(ct) if in_ct and ct else None,
                    reachable=bool(state.get("reachable", True)),
                )
            )
        return out

    async def apply(self, target: LightTarget) -> None:
        group_id = await self._ensure_started()
        body: dict[str, Any]
        if target.on:
            body = {"on": True, "bri": percent_to_bri(target.brightness)}
            if target.kelvin is not None and self.ct_range is not None:
                body["ct"] = kelvin_to_mired(target.kelvin, *self.ct_range)
        else:
            body = {"on": False}
        body["transitiontime"] = seconds_to_transitiontime(target.transition)
        await self.bridge.request("PUT", f"/groups/{group_id}/action", body)

    async def snapshot(self) -> Snapshot:
        await self._ensure_started()
        saved = []
        for light_id, light in (await self._lights()).items():
            state = light.get("state", {})
            exact: dict[str, Any] = {"on": bool(state.get("on"))}
            if "bri" in state:
                exact["bri"] = state["bri"]
            exact |= _colour(state)
            saved.append(SavedLight(light_id, str(light.get("name", light_id)), exact))
        return Snapshot(tuple(saved))

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        """Put every light back as saved; lights that were off are faded down, then
        switched off with their saved bri and colour.

        Two phases for a light that was off, because (1) bri/ct cannot be set on an off
        light (error 201) and (2) the firmware resets bri to 1 at the next "on" when a
        light was switched off *with* a transition. So: fade it to bri 1 over the
        transition, wait once for all of them, then in one step set its saved bri and
        colour and switch it off with no transition.
        """
        await self._ensure_started()
        steps = seconds_to_transitiontime(transition)
        current = await self._lights()
        failures: list[HueError] = []

        async def put(light_id: str, body: dict[str, Any]) -> bool:
            try:
                await self.bridge.request("PUT", f"/lights/{light_id}/state", body)
            except DeviceOff as exc:
                # The light is already off (by hand, or it was never switched on): there
                # is nothing left to fade, and an off light keeps what it has.
                log.debug("restore: light %s is already off (%s)", light_id, exc)
                return False
            except HueError as exc:
                failures.append(exc)
                return False
            return True

        to_switch_off: list[SavedLight] = []
        faded = False
        for saved in snapshot.lights:
            if saved.id not in current:
                log.warning("restore: light %s (%s) is gone from the bridge", saved.id, saved.name)
                continue
            colour = {k: v for k, v in saved.state.items() if k not in ("on", "bri")}
            if saved.state.get("on"):
                body = {"on": True, **self._bri(saved), **colour, "transitiontime": steps}
                await put(saved.id, body)
                continue
            to_switch_off.append(saved)
            # With no transition there is nothing to fade: phase 2 alone switches it off.
            if steps and current[saved.id].get("state", {}).get("on"):
                faded |= await put(saved.id, {"bri": 1, "transitiontime": steps})

        if faded:
            await self._sleep(transition)
        for saved in to_switch_off:
            colour = {k: v for k, v in saved.state.items() if k not in ("on", "bri")}
            await put(saved.id, {"on": False, **self._bri(saved), **colour, "transitiontime": 0})

        if failures:
            for extra in failures[1:]:
                log.warning("restore: %s", extra)
            raise failures[0]

    @staticmethod
    def _bri(saved: SavedLight) -> dict[str, Any]:
        return {"bri": saved.state["bri"]} if "bri" in saved.state else {}


# --- pairing -----------------------------------------------------------------------------


def default_devicetype() -> str:
    # The bridge allows "<app, 20 chars>#<device, 19 chars>".
    return f"ambiance#{socket.gethostname().split('.')[0][:19] or 'host'}"


async def pair(
    address: str,
    *,
    devicetype: str | None = None,
    timeout: float = 60.0,
    interval: float = 1.0,
    on_wait: Callable[[float], None] | None = None,
) -> str:
    """Ask the bridge at `address` for a new username, waiting up to `timeout` seconds
    for someone to press its link button. Return the username.

    `on_wait(seconds_left)` is called each time the bridge says the button was not
    pressed yet, so a CLI can prompt. Raises LinkButtonNotPressed on timeout.
    """
    bridge = HueBridge(address, None, timeout=min(5.0, timeout))
    body = {"devicetype": devicetype or default_devicetype()}
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                result = await bridge.request("POST", "/api", body)
            except LinkButtonNotPressed as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkButtonNotPressed(
                        f"the link button of the Hue bridge at {address} was not pressed:"
                        " press the round button on the bridge, then run `ambiance pair`"
                        " again within 30 s",
                        errors=exc.errors,
                    ) from None
                if on_wait is not None:
                    on_wait(left)
                await asyncio.sleep(min(interval, left))
                continue
            username = _username(result)
            log.info("paired with the Hue bridge at %s as %s", address, _redact(username))
            return username
    finally:
        await bridge.stop()


def _username(result: Any) -> str:
    if isinstance(result, list):
        for item in result:
            success = item.get("success") if isinstance(item, dict) else None
            username = success.get("username") if isinstance(success, dict) else None
            if isinstance(username, str):
                return username
    raise HueError(f"the Hue bridge answered pairing without a username: {result!r}")


# --- credentials -------------------------------------------------------------------------


class HueCredentials:
    """Usernames by bridge address, in `<data_dir>/hue.json` (readable by us alone)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "hue.json"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError([f"{self.path}: not valid JSON ({exc})"]) from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ConfigError([f"{self.path}: expected an object of address -> username"])
        return data

    def load(self, address: str) -> str | None:
        return self._read().get(address)

    def save(self, address: str, username: str) -> None:
        data = self._read()
        data[address] = username
        write_json_atomic(self.path, data, sort_keys=True)
        log.info("saved the Hue username for %s (%s)", address, _redact(username))
