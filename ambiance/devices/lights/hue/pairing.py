"""Pairing with a Hue bridge: `pair()` gets a username once its link button is pressed;
`HueCredentials` keeps usernames by bridge address."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ambiance.devices.lights.hue.bridge import HueBridge, redact
from ambiance.devices.lights.hue.errors import HueError, LinkButtonNotPressed
from ambiance.errors import ConfigError
from ambiance.infra.clock import Clock
from ambiance.infra.files import KiB
from ambiance.infra.jsonfile import read_json, write_json_atomic

log = logging.getLogger(__name__)


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
    clock: Clock | None = None,
) -> str:
    """Ask the bridge at `address` for a new username, waiting up to `timeout` seconds
    for someone to press its link button. Return the username.

    `on_wait(seconds_left)` is called each time the bridge says the button was not
    pressed yet, so a CLI can prompt. Raises LinkButtonNotPressed on timeout.
    """
    bridge = HueBridge(address, None, timeout=min(5.0, timeout), clock=clock)
    body = {"devicetype": devicetype or default_devicetype()}
    deadline = bridge.clock.monotonic() + timeout
    try:
        while True:
            try:
                result = await bridge.request("POST", "/api", body)
            except LinkButtonNotPressed as exc:
                left = deadline - bridge.clock.monotonic()
                if left <= 0:
                    raise LinkButtonNotPressed(
                        f"the link button of the Hue bridge at {address} was not pressed:"
                        " press the round button on the bridge, then run `ambiance pair`"
                        " again within 30 s",
                        errors=exc.errors,
                    ) from None
                if on_wait is not None:
                    on_wait(left)
                await bridge.clock.sleep(min(interval, left))
                continue
            username = _username(result)
            log.info("paired with the Hue bridge at %s as %s", address, redact(username))
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


CREDENTIALS_MAX_BYTES = 64 * KiB  # a username per bridge: under 100 bytes each


class HueCredentials:
    """Usernames by bridge address, in `<data_dir>/hue.json` (readable by us alone)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "hue.json"

    def _read(self) -> dict[str, str]:
        try:
            data = read_json(self.path, CREDENTIALS_MAX_BYTES, "the Hue credentials file")
        except FileNotFoundError:
            return {}
        except ValueError as exc:  # too large, unreadable or not JSON; names the file
            raise ConfigError([str(exc)]) from None
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
        log.info("saved the Hue username for %s (%s)", address, redact(username))
