"""A Philips Hue v1 bridge on a loopback port, for tests that go through real HTTP.

It speaks the subset of the v1 API ambiance uses, with the bridge's quirks that shape
our code: errors inside HTTP 200 as `[{"error": {...}}]`, error 101 until the link
button was pressed in the last 30 s, error 201 for bri/ct on an off light, ct clamped
silently into each light's own range, and error 7 for values out of range.

On an off light, only a body with `"on": true` may change bri/ct/xy/hue/sat (the rest
gets 201). A body with `"on": false` sent to a light that is on applies its other
attributes and switches the light off in one step: that is how an exact restore puts
back an off light's bri and colour.

Tests drive it from the outside: `press_link_button()`, `lights` (the live state, to
assert on or to change by hand), the request log (`requests`, `count`, `wait_for`),
faults (`fail_next`, `respond_raw_next`), and a restart that resets the lights:
`stop()`, then `start(reset_lights=True)` (every light back at its power-on default).
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

LINK_BUTTON_WINDOW = 30.0  # seconds registration stays open after a press

DESCRIPTIONS = {
    1: "unauthorized user",
    2: "body contains invalid json",
    3: "resource, {address}, not available",
    6: "parameter, {param}, not available",
    101: "link button not pressed",
    201: "parameter, {param}, is not modifiable. Device is set to off.",
    901: "Internal error, 404",
}

COLOUR_PARAMS = ("bri", "ct", "xy", "hue", "sat")


def hue_error(error_type: int, address: str, description: str | None = None) -> dict[str, Any]:
    if description is None:
        template = DESCRIPTIONS.get(error_type, f"error {error_type}")
        description = template.format(address=address, param=address.rsplit("/", 1)[-1])
    return {"error": {"type": error_type, "address": address, "description": description}}


@dataclass(frozen=True)
class Recorded:
    """One request as the bridge saw it."""

    method: str
    path: str  # as sent, e.g. /api/<user>/groups/1/action
    body: Any  # parsed JSON, the raw text if it was not JSON, None if empty
    user: str | None  # the username in the path, None for /api
    resource: str  # the path under /api/<user>, e.g. /groups/1/action ("" for /api)
    at: float = 0.0  # when it arrived, by time.monotonic()


@dataclass
class _Fault:
    remaining: int
    path_contains: str | None
    error_type: int | None = None  # a Hue error ...
    status: int | None = None  # ... or a raw reply (status None: bytes without HTTP)
    body: bytes = b""

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (self.path_contains is None or self.path_contains in path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


INT_RANGES = {
    "bri": (1, 254),
    "ct": (153, 500),  # all Hue lights together; each light then clamps to its own range
    "transitiontime": (0, 65535),
    "hue": (0, 65535),
    "sat": (0, 254),
}
CHOICES = {"alert": ("none", "select", "lselect"), "effect": ("none", "colorloop")}


def _valid(param: str, value: Any) -> bool:
    """False for a value the bridge answers with error 7."""
    if param == "on":
        return isinstance(value, bool)
    if param in INT_RANGES:
        low, high = INT_RANGES[param]
        return _is_int(value) and low <= value <= high
    if param == "xy":
        return (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_number(v) and 0 <= v <= 1 for v in value)
        )
    if param in CHOICES:
        return value in CHOICES[param]
    return True


KNOWN_PARAMS = {"on", "bri", "ct", "xy", "hue", "sat", "transitiontime", "alert", "effect"}


class HueEmulator:
    """A Hue v1 bridge on 127.0.0.1. The constructor only assigns; `start()` binds."""

    def __init__(
        self,
        *,
        port: int = 0,
        users: Iterable[str] = (),
        lights: Mapping[str, dict[str, Any]] | None = None,
        groups: Mapping[str, dict[str, Any]] | None = None,
        now: Callable[[], float] = time.monotonic,
        name: str = "Emulated bridge",
    ) -> None:
        self._port = port
        self.name = name
        self.bridgeid = "001788FFFE000000"
        self._now = now
        self._lock = threading.Condition()
        self._users: set[str] = set(users)
        self._pressed_at: float | None = None
        self._requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # The live state, in the bridge's own JSON shape (tests may read and change it).
        self.lights: dict[str, dict[str, Any]] = (
            {k: copy.deepcopy(v) for k, v in lights.items()} if lights is not None else {}
        )
        self.groups: dict[str, dict[str, Any]] = (
            {k: copy.deepcopy(v) for k, v in groups.items()} if groups is not None else {}
        )
        self.transitiontimes: dict[str, int | None] = {}  # the last one each light received
        if lights is None and groups is None:
            self._add_defaults()

    def _add_defaults(self) -> None:
        self.add_light("1", "Bed left", on=True, bri=200, ct=366)
        self.add_light("2", "Bed right", on=True, bri=120, ct=250, ct_max=500)
        self.add_light("3", "Ceiling", on=False, bri=254, ct=233)
        self.add_group("1", "Bedroom", ["1", "2", "3"])

    # --- lifecycle --------------------------------------------------------------------

    def start(self, *, reset_lights: bool = False) -> HueEmulator:
        """Bind (the same port again after `stop()`). `reset_lights`: the bridge comes back
        as after a power cut, every light at its power-on default (`power_on()`)."""
        if self._server is not None:
            return self
        if reset_lights:
            self.power_on()
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]  # the same port again after stop()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hue-emulator-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HueEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- set-up -----------------------------------------------------------------------

    def press_link_button(self) -> None:
        with self._lock:
            self._pressed_at = self._now()

    def add_user(self, name: str) -> None:
        with self._lock:
            self._users.add(name)

    @property
    def users(self) -> set[str]:
        with self._lock:
            return set(self._users)

    def add_light(
        self,
        id: str,
        name: str,
        *,
        ct_min: int = 153,
        ct_max: int = 454,
        on: bool = True,
        bri: int = 254,
        ct: int = 366,
        xy: tuple[float, float] = (0.4573, 0.41),
        hue: int = 8417,
        sat: int = 140,
        colormode: str = "ct",
        supports_ct: bool = True,
        reachable: bool = True,
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "on": on,
            "bri": bri,
            "hue": hue,
            "sat": sat,
            "effect": "none",
            "xy": list(xy),
            "alert": "none",
            "colormode": colormode,
            "mode": "homeautomation",
            "reachable": reachable,
        }
        control: dict[str, Any] = {
            "mindimlevel": 1000,
            "maxlumen": 806,
            "colorgamuttype": "C",
            "colorgamut": [[0.6915, 0.3083], [0.17, 0.7], [0.1532, 0.0475]],
        }
        if supports_ct:
            state["ct"] = max(ct_min, min(ct_max, ct))
            control["ct"] = {"min": ct_min, "max": ct_max}
        light = {
            "state": state,
            "swupdate": {"state": "noupdates", "lastinstall": "2024-01-01T00:00:00"},
            "type": "Extended color light" if supports_ct else "Color light",
            "name": name,
            "modelid": "LCT015" if supports_ct else "LLC020",
            "manufacturername": "Signify Netherlands B.V.",
            "productname": "Hue color lamp" if supports_ct else "Hue go",
            "capabilities": {
                "certified": True,
                "control": control,
                "streaming": {"renderer": True, "proxy": True},
            },
            "config": {
                "archetype": "sultanbulb",
                "function": "mixed",
                "direction": "omnidirectional",
            },
            "uniqueid": f"00:17:88:01:00:00:00:{int(id) % 256:02x}-0b",
            "swversion": "1.50.2_r30933",
        }
        with self._lock:
            self.lights[id] = light
        return light

    def add_group(self, id: str, name: str, light_ids: Iterable[str]) -> dict[str, Any]:
        group = {
            "name": name,
            "lights": list(light_ids),
            "sensors": [],
            "type": "Room",
            "class": "Bedroom",
            "recycle": False,
            "action": {"on": False, "bri": 254, "ct": 366, "alert": "none", "colormode": "ct"},
        }
        with self._lock:
            self.groups[id] = group
        return group

    def power_on(self) -> None:
        """Every light as a Hue bulb comes back from a power cut with the factory setting
        ("Hue default"): on, full brightness, 2700 K warm white (ct 366, or its xy on a
        light without ct). Groups keep their lights."""
        with self._lock:
            for light in self.lights.values():
                state = light["state"]
                state.update(on=True, bri=254, alert="none", effect="none", reachable=True)
                if "ct" in state:
                    ct = light["capabilities"]["control"]["ct"]
                    state.update(ct=max(ct["min"], min(ct["max"], 366)), colormode="ct")
                else:
                    state.update(xy=[0.4573, 0.41], colormode="xy")

    def state(self, light_id: str) -> dict[str, Any]:
        """A copy of one light's state."""
        with self._lock:
            return copy.deepcopy(self.lights[light_id]["state"])

    def set_state(self, light_id: str, **values: Any) -> None:
        """Change a light by hand, as its wall switch or another app would."""
        with self._lock:
            self.lights[light_id]["state"].update(values)

    def last_transitiontime(self, light_id: str) -> int | None:
        with self._lock:
            return self.transitiontimes.get(light_id)

    # --- the request log --------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """Count recorded requests. A prefix starting with /api matches the raw path;
        any other prefix matches the path under /api/<user> (e.g. "/groups/1/action")."""
        with self._lock:
            return sum(1 for r in self._requests if _matches(r, method, path_prefix))

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> bool:
        """Block until at least `count` matching requests were seen (for a test's other
        thread); return False on timeout."""

        def seen() -> bool:
            return sum(1 for r in self._requests if _matches(r, method, path_prefix)) >= count

        with self._lock:
            return self._lock.wait_for(seen, timeout)

    # --- faults -----------------------------------------------------------------------

    def fail_next(self, n: int, error_type: int, path_contains: str | None = None) -> None:
        """Answer the next `n` matching requests with a Hue error of `error_type`."""
        with self._lock:
            self._faults.append(_Fault(n, path_contains, error_type=error_type))

    def respond_raw_next(
        self,
        n: int,
        status: int | None,
        body: str | bytes,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next `n` matching requests with `body` as text/html and `status`;
        with status None, write `body` to the socket with no HTTP framing at all."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.append(_Fault(n, path_contains, status=status, body=raw))

    # --- the bridge (called from the handler threads) ---------------------------------

    def _handle(self, method: str, path: str, text: str) -> tuple[_Fault | None, Any]:
        body: Any = None
        bad_json = False
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                body, bad_json = text, True
        user, resource = _split(path)
        with self._lock:
            self._requests.append(Recorded(method, path, body, user, resource, time.monotonic()))
            self._lock.notify_all()
            for fault in self._faults:
                if fault.matches(path):
                    fault.remaining -= 1
                    if fault.error_type is not None:
                        return None, [hue_error(fault.error_type, resource or "/")]
                    return fault, None
            if bad_json:
                return None, [hue_error(2, resource or "/")]
            return None, self._route(method, user, resource, body)

    def _route(self, method: str, user: str | None, resource: str, body: Any) -> Any:
        if user is None:
            if method == "POST":
                return self._register(body)
            return [hue_error(1, "/")]
        parts = [p for p in resource.split("/") if p]
        if parts == ["config"] and method == "GET":
            return self._config(full=user in self._users)
        if user not in self._users:
            return [hue_error(1, resource or "/")]
        match method, parts:
            case "GET", []:
                return {"lights": self.lights, "groups": self._groups(), "config": self._config()}
            case "GET", ["lights"]:
                return self.lights
            case "GET", ["lights", light_id] if light_id in self.lights:
                return self.lights[light_id]
            case "PUT", ["lights", light_id, "state"] if light_id in self.lights:
                return self._set_light(light_id, _as_dict(body))
            case "GET", ["groups"]:
                return self._groups()
            case "GET", ["groups", group_id] if group_id in self.groups:
                return self._groups()[group_id]
            case "PUT", ["groups", group_id, "action"] if group_id in self.groups:
                return self._set_group(group_id, _as_dict(body))
            case _, ["lights" | "groups", _, *_]:
                return [hue_error(3, resource)]
            case _, ["lights" | "groups" | "config", *_]:
                return [hue_error(4, resource, _method_error(method, resource))]
        return [hue_error(3, resource)]

    def _register(self, body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("devicetype"), str):
            return [hue_error(6, "/devicetype", "parameter, devicetype, not available")]
        pressed = self._pressed_at
        if pressed is None or self._now() - pressed > LINK_BUTTON_WINDOW:
            return [hue_error(101, "/")]
        username = secrets.token_hex(20)
        self._users.add(username)
        return [{"success": {"username": username}}]

    def _config(self, full: bool = True) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": self.name,
            "datastoreversion": "163",
            "swversion": "1967054020",
            "apiversion": "1.50.0",
            "mac": "00:17:88:00:00:00",
            "bridgeid": self.bridgeid,
            "factorynew": False,
            "replacesbridgeid": None,
            "modelid": "BSB002",
            "starterkitid": "",
        }
        if full:
            config |= {
                "zigbeechannel": 15,
                "ipaddress": "127.0.0.1",
                "netmask": "255.0.0.0",
                "gateway": "127.0.0.1",
                "dhcp": False,
                "linkbutton": self._pressed_at is not None
                and self._now() - self._pressed_at <= LINK_BUTTON_WINDOW,
                "whitelist": {u: {"name": "emulated"} for u in sorted(self._users)},
            }
        return config

    def _groups(self) -> dict[str, Any]:
        out = {}
        for gid, group in self.groups.items():
            ons = [self.lights[i]["state"]["on"] for i in group["lights"] if i in self.lights]
            out[gid] = group | {"state": {"all_on": bool(ons) and all(ons), "any_on": any(ons)}}
        return out

    def _set_light(self, light_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        light = self.lights[light_id]
        state = light["state"]
        prefix = f"/lights/{light_id}/state"
        was_off = not state["on"]
        results: list[dict[str, Any]] = []
        changes: dict[str, Any] = {}
        for param, value in body.items():
            address = f"{prefix}/{param}"
            if param not in KNOWN_PARAMS or (param == "ct" and "ct" not in state):
                results.append(hue_error(6, address))
                continue
            if not _valid(param, value):
                results.append(hue_error(7, address, _invalid(param, value)))
                continue
            if param in COLOUR_PARAMS and was_off and body.get("on") is not True:
                results.append(hue_error(201, address))
                continue
            changes[param] = value
            results.append({"success": {address: value}})
        self._apply(light_id, changes)
        return results

    def _set_group(self, group_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        group = self.groups[group_id]
        prefix = f"/groups/{group_id}/action"
        results: list[dict[str, Any]] = []
        changes: dict[str, Any] = {}
        for param, value in body.items():
            address = f"{prefix}/{param}"
            if param not in KNOWN_PARAMS:
                results.append(hue_error(6, address))
                continue
            if not _valid(param, value):
                results.append(hue_error(7, address, _invalid(param, value)))
                continue
            changes[param] = value
            results.append({"success": {address: value}})
        for light_id in group["lights"]:
            if light_id not in self.lights:
                continue
            state = self.lights[light_id]["state"]
            mine = dict(changes)
            if "ct" in mine and "ct" not in state:
                del mine["ct"]
            # A group does not report 201; an off light just keeps its colour.
            if not state["on"] and "on" not in mine:
                mine = {k: v for k, v in mine.items() if k not in COLOUR_PARAMS}
            self._apply(light_id, mine)
        action = group["action"]
        action.update({k: v for k, v in changes.items() if k != "transitiontime"})
        if "xy" in changes:
            action["colormode"] = "xy"
        elif "ct" in changes:
            action["colormode"] = "ct"
        return results

    def _apply(self, light_id: str, changes: dict[str, Any]) -> None:
        light = self.lights[light_id]
        state = light["state"]
        self.transitiontimes[light_id] = changes.get("transitiontime")
        for param in ("on", "bri", "hue", "sat", "xy", "alert", "effect"):
            if param in changes:
                state[param] = changes[param]
        if "ct" in changes:
            ct_range = light["capabilities"]["control"]["ct"]
            # The real bridge clamps a valid ct into the light's own range, silently.
            state["ct"] = max(ct_range["min"], min(ct_range["max"], changes["ct"]))
        if "xy" in changes:
            state["colormode"] = "xy"
        elif "ct" in changes:
            state["colormode"] = "ct"
        elif "hue" in changes or "sat" in changes:
            state["colormode"] = "hs"


def _split(path: str) -> tuple[str | None, str]:
    """Split /api/<user>/rest into (user, "/rest"); /api gives (None, "")."""
    path = path.split("?", 1)[0].rstrip("/")
    parts = path.split("/")  # ["", "api", user, ...]
    if len(parts) < 2 or parts[1] != "api":
        return None, path
    if len(parts) == 2:
        return None, ""
    return parts[2], ("/" + "/".join(parts[3:])) if len(parts) > 3 else ""


def _matches(r: Recorded, method: str | None, path_prefix: str | None) -> bool:
    if method is not None and r.method != method:
        return False
    if path_prefix is None:
        return True
    target = r.path if path_prefix.startswith("/api") else r.resource
    return target.startswith(path_prefix)


def _as_dict(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {}


def _invalid(param: str, value: Any) -> str:
    return f"invalid value, {json.dumps(value)}, for parameter, {param}"


def _method_error(method: str, resource: str) -> str:
    return f"method, {method}, not available for resource, {resource}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "nginx"  # what a real bridge says
    sys_version = ""

    def _serve(self) -> None:
        emulator: HueEmulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        fault, answer = emulator._handle(self.command, self.path, text)
        if fault is not None:
            if fault.status is None:
                self.wfile.write(fault.body)
                self.close_connection = True
                return
            self._send(fault.status, fault.body, "text/html")
            return
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the request log is the record; keep test output clean
