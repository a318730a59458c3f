"""The one connection to an MPD (or Mopidy) player, and how its answers are read.

One connection, opened on first use and reopened by `call()` whenever it died (the
player restarted, the socket broke). `call()` is the one way to the player: it applies
the timeout and turns python-mpd2's and the OS's errors into ours — `DeviceUnavailable`
for a player that cannot be reached (the coordinator then retries with backoff) and
`PlayerRefused` for a command the player answered with an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast

from mpd import CommandError, MPDError
from mpd.asyncio import MPDClient

from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.errors import DeviceError, DeviceUnavailable

# The package's name ("ambiance.devices.music.mpd", as before it was split).
log = logging.getLogger(__package__)

T = TypeVar("T")

PlayState = Literal["play", "pause", "stop"]


class PlayerRefused(DeviceError):
    """The player answered a command with an error (an unknown playlist or file, a wrong
    password, a command it does not implement). `reply` is its error line."""

    code = "player_refused"

    def __init__(self, message: str, *, reply: str) -> None:
        super().__init__(message, detail={"reply": reply})
        self.reply = reply


# --- reading MPD's answers ---------------------------------------------------------------


def as_int(status: Mapping[str, str], key: str) -> int | None:
    try:
        return int(status[key])
    except (KeyError, ValueError):
        return None


def as_float(status: Mapping[str, str], key: str) -> float | None:
    try:
        return float(status[key])
    except (KeyError, ValueError):
        return None


def volume_of(status: Mapping[str, str]) -> int | None:
    """MPD says -1 (or, in newer versions, nothing) when no mixer can tell the volume."""
    volume = as_int(status, "volume")
    return volume if volume is not None and volume >= 0 else None


def duration_of(status: Mapping[str, str]) -> float:
    """The current song's length: `duration` since MPD 0.20, else (older MPDs, Mopidy) the
    total in `time: <elapsed>:<total>`; 0 when unknown."""
    duration = as_float(status, "duration")
    if duration is None:
        _, _, total = status.get("time", "").partition(":")
        duration = as_float({"total": total}, "total")
    return duration or 0.0


def state_of(status: Mapping[str, str]) -> PlayState:
    state = status.get("state")
    return "play" if state == "play" else "pause" if state == "pause" else "stop"


def percent(volume: float) -> int:
    return max(0, min(100, round(volume)))


# --- the client --------------------------------------------------------------------------


class AsyncMpdClient(MPDClient):  # type: ignore[misc]  # python-mpd2 has no type hints
    """python-mpd2's asyncio client, quiet when its connection goes.

    python-mpd2 3.1 hands each `idle` answer to its listeners in a done-callback. When the
    connection breaks during an idle (the player restarted), or is closed just after an
    answer came in, that callback fails (an error that is not a CommandError, or the
    listener list already set to None by `disconnect()`), and asyncio logs "Exception in
    callback" with a traceback. Both mean the connection is gone, which `disconnect()` has
    already told the listeners, so the callback has nothing left to do.
    """

    def _MPDClient__idle_result(self, result: asyncio.Future[Any]) -> None:
        # Asking for the error marks it as seen (no "exception was never retrieved").
        error = None if result.cancelled() else result.exception()
        if self._MPDClient__idle_consumers is None:
            return
        if error is not None and not isinstance(error, CommandError):
            return
        super()._MPDClient__idle_result(result)


class MpdConnection:
    """One player's connection: every command goes through `call()` (or `command()`)."""

    def __init__(self, config: MpdMusicConfig) -> None:
        self.config = config
        self._client: AsyncMpdClient | None = None
        self._connect_lock = asyncio.Lock()
        self._connections = 0
        self._reconnected = False  # a new connection since the last check: is the queue ours?
        self._warned: set[str] = set()

    @property
    def name(self) -> str:
        return f"MPD at {self.config.host}:{self.config.port}"

    def take_reconnected(self) -> bool:
        """True once after each new connection but the first: the player may have
        restarted, so what it plays now is checked before it is taken for ours."""
        reconnected, self._reconnected = self._reconnected, False
        return reconnected

    async def connected(self) -> AsyncMpdClient:
        """The open connection, opened (again) when there is none."""
        client = self._client
        if client is not None and client.connected:
            return client
        async with self._connect_lock:  # the fade task and apply() may both find it closed
            if self._client is not None and self._client.connected:
                return self._client
            self._drop(self._client)
            client = AsyncMpdClient()
            timeout = self.config.timeout
            try:
                await asyncio.wait_for(client.connect(self.config.host, self.config.port), timeout)
                if self.config.password is not None:
                    secret = self.config.password.get_secret_value()
                    await asyncio.wait_for(client.password(secret), timeout)
            except CommandError as exc:
                client.disconnect()
                raise PlayerRefused(
                    f"{self.name} refused the password: {exc}", reply=str(exc)
                ) from exc
            except (TimeoutError, OSError, MPDError) as exc:
                client.disconnect()
                reason = f"no answer in {timeout} s" if isinstance(exc, TimeoutError) else exc
                raise DeviceUnavailable(f"cannot reach {self.name}: {reason}") from exc
            self._client = client
            self._connections += 1
            if self._connections > 1:
                self._reconnected = True
                log.info("%s: connected again", self.name)
            return client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    def _drop(self, client: AsyncMpdClient | None) -> None:
        """Close a connection that failed, so the next call opens a new one."""
        if client is None:
            return
        if self._client is client:
            self._client = None
        client.disconnect()

    async def call(
        self,
        what: str,
        action: Callable[[AsyncMpdClient], Awaitable[T]],
        *,
        timeout: float | None = None,
    ) -> T:
        """Run `action(client)` on the connection (opened again when needed) within the
        timeout; `what` says what it was for in errors."""
        client = await self.connected()
        limit = self.config.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(action(client), limit)
        except CommandError as exc:
            # The connection is fine: the player said no to this one command.
            raise PlayerRefused(f"{self.name} refused to {what}: {exc}", reply=str(exc)) from exc
        except TimeoutError as exc:
            # A late answer would be read as the answer to the next command: start afresh.
            self._drop(client)
            raise DeviceUnavailable(f"{self.name} did not answer in {limit} s ({what})") from exc
        except (MPDError, OSError) as exc:
            self._drop(client)
            raise DeviceUnavailable(
                f"lost {self.name} ({what}): {exc or type(exc).__name__}"
            ) from exc

    async def command(self, name: str, *args: Any) -> Any:
        async def send(client: AsyncMpdClient) -> Any:
            # Awaited here, in a coroutine: list results (playlistinfo, ...) are futures that
            # python-mpd2 only starts filling on `await`, which `wait_for` would not do.
            return await getattr(client, name)(*args)

        return await self.call(" ".join([name, *map(str, args)]), send)

    async def status(self) -> dict[str, str]:
        return cast(dict[str, str], await self.command("status"))

    async def files(self) -> tuple[str, ...]:
        songs = cast(list[dict[str, str]], await self.command("playlistinfo"))
        return tuple(song["file"] for song in songs)

    async def idle(self, subsystems: Iterable[str], timeout: float) -> list[str]:
        """Wait until the player reports a change in `subsystems` (MPD's `idle`); [] when
        `timeout` passes first. Changes since our last idle are kept for us by MPD, so one
        that happened just before this call is reported at once."""
        wanted = list(subsystems)

        async def wait(client: AsyncMpdClient) -> list[str]:
            changes = client.idle(wanted)
            try:
                return cast(list[str], await asyncio.wait_for(anext(changes), timeout))
            except TimeoutError:
                return []
            finally:
                await changes.aclose()

        return await self.call(
            f"idle {' '.join(wanted)}", wait, timeout=timeout + self.config.timeout
        )

    async def set_crossfade(self, seconds: float, status: Mapping[str, str]) -> None:
        """Crossfade `seconds` (rounded), sent only when `status` says another value."""
        want = max(0, round(seconds))
        if want == (as_int(status, "xfade") or 0):
            return
        try:
            await self.command("crossfade", want)
        except PlayerRefused as exc:  # Mopidy: "Not implemented"
            self.warn_once("crossfade", "%s does not crossfade: %s", self.name, exc)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
