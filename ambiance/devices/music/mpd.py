"""Music through MPD, or Mopidy's MPD frontend, with python-mpd2's asyncio client.

MPD has no fade command, so a fade is a run of `setvol` steps (every `fade_step`
seconds) in a background task: `apply()` returns while the music swells, and a newer
fade cancels the older one where it has got to. Fades that must end before the next
command (out before `clear`/`load`, out before a restore) are awaited.

One connection, opened in `start()` and reopened by `_call()` whenever it died (the
player restarted, the socket broke). `_call()` is the one way to the player: it applies
the timeout and turns python-mpd2's and the OS's errors into ours — `DeviceUnavailable`
for a player that cannot be reached (the coordinator then retries with backoff) and
`PlayerRefused` for a command the player answered with an error.

The stage chime (`config.cue`, a file in the player's library): the music dips to
DUCK_VOLUME, the chime is inserted before the current song and played in single mode (so
the player halts after it instead of running on into the music at the chime's volume),
`idle player` says when it ended, and the song goes on from where it was, coming back up
with the stage's fade. A chime missing from the library is warned about once.

The coordinator applies a target only when it changes, so after a reconnect the backend
checks the queue itself: a player that restarted (with another queue, or none) is given
the room's music again at the next `read()`.

Only commands that both MPD and Mopidy know are used; `crossfade`, which Mopidy refuses,
is sent only when the value changes and a refusal is logged once and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar, cast

from mpd import CommandError, MPDError
from mpd.asyncio import MPDClient

from ambiance.devices.music.base import MpdMusicConfig, MusicState, MusicTarget
from ambiance.errors import DeviceError, DeviceUnavailable

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

DUCK_VOLUME = 10  # percent: the music dips to this before the chime and comes back from it
DUCK_FADE = 1.0  # seconds at most to dip before the chime: a stage change should feel prompt
RESTORE_FADE_MAX = 10.0  # seconds: an end-of-session fade longer than this feels like a hang
IDLE_POLL = 1.0  # seconds: re-check the player this often while waiting for the chime to end

PlayState = Literal["play", "pause", "stop"]


class PlayerRefused(DeviceError):
    """The player answered a command with an error (an unknown playlist or file, a wrong
    password, a command it does not implement). `reply` is its error line."""

    code = "player_refused"

    def __init__(self, message: str, *, reply: str) -> None:
        super().__init__(message, detail={"reply": reply})
        self.reply = reply


@dataclass(frozen=True)
class MpdSnapshot:
    """What the player did before the session: enough to put it back exactly.

    `snapshot()` hands it over as `to_json()`, since the store keeps a session's snapshots
    as JSON (so that a room is still put back after a restart); `restore()` reads it back.
    """

    state: PlayState
    queue: tuple[str, ...]  # files (or URIs), in order
    song: int | None  # position in `queue` of the current song
    elapsed: float | None  # seconds into it
    volume: int | None  # None: the player has no mixer
    random: bool
    repeat: bool
    single: str  # "0", "1" or "oneshot"
    consume: str  # "0", "1" or "oneshot" (MPD 0.24)
    crossfade: int  # seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["queue"] = list(self.queue)
        return data

    @classmethod
    def from_json(cls, data: Any) -> MpdSnapshot:
        """Read back `to_json()`; ValueError when `data` is not one."""
        try:
            state = data["state"]
            if state not in ("play", "pause", "stop"):
                raise ValueError(f"state {state!r}")
            song, elapsed, volume = data["song"], data["elapsed"], data["volume"]
            return cls(
                state=state,
                queue=tuple(str(file) for file in data["queue"]),
                song=None if song is None else int(song),
                elapsed=None if elapsed is None else float(elapsed),
                volume=None if volume is None else int(volume),
                random=bool(data["random"]),
                repeat=bool(data["repeat"]),
                single=str(data["single"]),
                consume=str(data["consume"]),
                crossfade=int(data["crossfade"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an MPD snapshot ({exc}): {data!r:.200}") from exc


# --- reading MPD's answers ---------------------------------------------------------------


def _int(status: Mapping[str, str], key: str) -> int | None:
    try:
        return int(status[key])
    except (KeyError, ValueError):
        return None


def _float(status: Mapping[str, str], key: str) -> float | None:
    try:
        return float(status[key])
    except (KeyError, ValueError):
        return None


def _volume(status: Mapping[str, str]) -> int | None:
    """MPD says -1 (or, in newer versions, nothing) when no mixer can tell the volume."""
    volume = _int(status, "volume")
    return volume if volume is not None and volume >= 0 else None


def _duration(status: Mapping[str, str]) -> float:
    """The current song's length: `duration` since MPD 0.20, else (older MPDs, Mopidy) the
    total in `time: <elapsed>:<total>`; 0 when unknown."""
    duration = _float(status, "duration")
    if duration is None:
        _, _, total = status.get("time", "").partition(":")
        duration = _float({"total": total}, "total")
    return duration or 0.0


def _state(status: Mapping[str, str]) -> PlayState:
    state = status.get("state")
    return "play" if state == "play" else "pause" if state == "pause" else "stop"


def _percent(volume: float) -> int:
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


# --- the backend -------------------------------------------------------------------------


class MpdMusic:
    """The music of one room on an MPD (or Mopidy) player."""

    kind = "mpd"

    def __init__(self, config: MpdMusicConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self._sleep = sleep  # between fade steps; tests may pass a faster one
        self._client: AsyncMpdClient | None = None
        self._connect_lock = asyncio.Lock()
        self._connections = 0
        self._reconnected = False  # a new connection since the last check: is the queue ours?
        self._fade_task: asyncio.Task[None] | None = None
        self._target: MusicTarget | None = None  # what we were last asked to play
        self._loaded: MusicTarget | None = None  # whose music is in the queue, when ours
        self._queue: tuple[str, ...] = ()  # the files we loaded, to recognise them later
        self._cue = 0  # the last cue value played (the room counts from 0: 0 means none)
        self._warned: set[str] = set()

    @property
    def name(self) -> str:
        return f"MPD at {self.config.host}:{self.config.port}"

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        # A player that is down now is not an error: the first call raises
        # DeviceUnavailable, and the coordinator retries until it is back.
        try:
            await self._connected()
        except DeviceUnavailable as exc:
            log.info("%s: not reachable yet (%s)", self.name, exc)

    async def stop(self) -> None:
        await self._cancel_fade()
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    # --- the one way to the player ----------------------------------------------------

    async def _connected(self) -> AsyncMpdClient:
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
                # The player may have restarted: what it plays now is checked before it
                # is taken for ours.
                self._reconnected = True
                log.info("%s: connected again", self.name)
            return client

    def _drop(self, client: AsyncMpdClient | None) -> None:
        """Close a connection that failed, so the next call opens a new one."""
        if client is None:
            return
        if self._client is client:
            self._client = None
        client.disconnect()

    async def _call(
        self,
        what: str,
        action: Callable[[AsyncMpdClient], Awaitable[T]],
        *,
        timeout: float | None = None,
    ) -> T:
        """Run `action(client)` on the connection (opened again when needed) within the
        timeout; `what` says what it was for in errors."""
        client = await self._connected()
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

    async def _command(self, name: str, *args: Any) -> Any:
        async def send(client: AsyncMpdClient) -> Any:
            # Awaited here, in a coroutine: list results (playlistinfo, ...) are futures that
            # python-mpd2 only starts filling on `await`, which `wait_for` would not do.
            return await getattr(client, name)(*args)

        return await self._call(" ".join([name, *map(str, args)]), send)

    async def _status(self) -> dict[str, str]:
        return cast(dict[str, str], await self._command("status"))

    async def _files(self) -> tuple[str, ...]:
        songs = cast(list[dict[str, str]], await self._command("playlistinfo"))
        return tuple(song["file"] for song in songs)

    async def _idle(self, subsystems: Iterable[str], timeout: float) -> list[str]:
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

        return await self._call(
            f"idle {' '.join(wanted)}", wait, timeout=timeout + self.config.timeout
        )

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # --- fades ------------------------------------------------------------------------

    async def _cancel_fade(self) -> None:
        """Stop the running fade where it has got to, and wait until it has stopped."""
        task, self._fade_task = self._fade_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _fade(self, volume: float, seconds: float) -> asyncio.Task[None]:
        """Start a fade from the volume now to `volume` over `seconds` in the background,
        cancelling the one that runs; await the task where the order matters."""
        await self._cancel_fade()
        start = _volume(await self._status())
        task = asyncio.create_task(
            self._fade_steps(start, _percent(volume), seconds), name=f"fade:{self.name}"
        )
        self._fade_task = task
        return task

    async def _fade_to(self, volume: float, seconds: float) -> None:
        """A fade that must be over before the caller goes on."""
        await (await self._fade(volume, seconds))

    async def wait_faded(self) -> None:
        """Wait until the running fade (if any) has reached its volume or was cancelled."""
        task = self._fade_task
        if task is not None:
            await asyncio.wait([task])

    async def _fade_steps(self, start: int | None, end: int, seconds: float) -> None:
        if start is None:
            self._warn_once(
                "mixer", "%s reports no volume (no mixer?): music plays without fades", self.name
            )
            return
        step = self.config.fade_step
        count = max(1, math.ceil(seconds / step - 1e-9)) if seconds > 0 and start != end else 1
        sent = start
        try:
            for i in range(1, count + 1):
                if count > 1:
                    await self._sleep(step)
                volume = end if i == count else round(start + (end - start) * i / count)
                if volume != sent or i == count:  # the last step sets the target exactly
                    await self._command("setvol", volume)
                    sent = volume
        except PlayerRefused as exc:
            self._warn_once("setvol", "%s does not take volume changes: %s", self.name, exc)
        except DeviceError as exc:
            # The player went away mid-fade; the next call says so to the coordinator, and
            # after the reconnect the room's target is applied again.
            log.debug("%s: fade stopped: %s", self.name, exc)
        except Exception:  # nobody awaits a background fade: a bug must still be seen
            log.exception("%s: fade failed", self.name)

    async def _setvol(self, volume: float) -> None:
        """Set the volume now, with no fade (and stop the fade that runs)."""
        await self._cancel_fade()
        try:
            await self._command("setvol", _percent(volume))
        except PlayerRefused as exc:
            self._warn_once("setvol", "%s does not take volume changes: %s", self.name, exc)

    async def _set_crossfade(self, seconds: float, status: Mapping[str, str]) -> None:
        want = max(0, round(seconds))
        if want == (_int(status, "xfade") or 0):
            return
        try:
            await self._command("crossfade", want)
        except PlayerRefused as exc:  # Mopidy: "Not implemented"
            self._warn_once("crossfade", "%s does not crossfade: %s", self.name, exc)

    # --- the MusicBackend protocol ----------------------------------------------------

    async def read(self) -> MusicState:
        if await self._check_queue() and self._target is not None:
            # The player came back (restarted, perhaps empty): bring it to the room's music
            # again, since the coordinator only applies a target when it changes.
            await self._converge(self._target)
        status = await self._status()
        song = cast(dict[str, str], await self._command("currentsong"))
        volume = _volume(status)
        return MusicState(
            state=_state(status) if "state" in status else "unknown",
            volume=float(volume) if volume is not None else None,
            playlist=self._loaded.playlist if self._loaded is not None else None,
            song=(song.get("title") or song.get("file")) if song else None,
            elapsed=_float(status, "elapsed"),
        )

    async def apply(self, target: MusicTarget) -> None:
        await self._check_queue()
        if target.cue != self._cue:
            if self.config.cue is not None:
                await self._play_cue(self.config.cue, target)
            self._cue = target.cue
        await self._converge(target)

    async def _check_queue(self) -> bool:
        """After a reconnect, forget our music unless the queue is still what we loaded.
        True when there was a reconnect to check."""
        await self._connected()  # a reconnect, if there is one, happens here
        if not self._reconnected:
            return False
        if self._loaded is not None and await self._files() != self._queue:
            log.info("%s: the queue changed while we were away; loading the music again", self.name)
            self._loaded = None
        self._reconnected = False
        return True

    async def _converge(self, target: MusicTarget) -> None:
        status = await self._status()
        playing = _state(status) == "play"
        if target.stop:
            if playing:
                await self._fade_to(0, target.fade)
            else:
                await self._cancel_fade()
            await self._command("stop")
            self._target = self._loaded = None
            return
        self._target = target
        await self._set_crossfade(target.crossfade, status)
        if target.same_music(self._loaded):
            if not playing:
                await self._command("play")  # resumes when paused, starts when stopped
            await self._fade(target.volume, target.fade)
            return
        # New music: out with the old (faded out first, so the cut is silent), in with the new.
        if playing:
            await self._fade_to(0, target.fade)
        else:
            await self._cancel_fade()
        self._loaded = None  # until the new music is in
        await self._command("clear")
        if target.playlist is not None:
            try:
                await self._command("load", target.playlist)
            except PlayerRefused as exc:
                raise PlayerRefused(
                    f"{self.name} has no playlist {target.playlist!r} ({exc.reply})",
                    reply=exc.reply,
                ) from exc
        for track in target.tracks:
            try:
                await self._command("add", track)
            except PlayerRefused as exc:
                raise PlayerRefused(
                    f"{self.name} has no track {track!r} ({exc.reply})", reply=exc.reply
                ) from exc
        self._queue = await self._files()
        await self._setvol(0)
        await self._command("play")
        self._loaded = target
        await self._fade(target.volume, target.fade)

    async def _play_cue(self, cue: str, target: MusicTarget) -> None:
        """Dip the music, play the chime, then go back to the song where it was."""
        await self._cancel_fade()  # the volume it has got to is the one to dip from
        status = await self._status()
        state = _state(status)
        song_id = status.get("songid") if state != "stop" else None
        elapsed = _float(status, "elapsed") or 0.0
        volume = _volume(status)
        # Inserted just before the current song (or at the end when none plays).
        position = _int(status, "song") if song_id is not None else None
        try:
            cue_id = str(
                await self._command("addid", cue, *([position] if position is not None else []))
            )
        except PlayerRefused as exc:
            self._warn_once(
                "cue",
                "%s: no cue %r in the player's library (%s); stages change without a chime "
                "(`ambiance chime --out <music dir>/ambiance` writes one)",
                self.name,
                cue,
                exc.reply,
            )
            return
        modes: dict[str, str] = {}
        try:
            if state == "play" and volume is not None:
                await self._fade_to(min(volume, DUCK_VOLUME), min(target.fade, DUCK_FADE))
            # The chime alone and once: no crossfade into it, and the player halts after it
            # (single mode) rather than run on into the music at the chime's volume, and
            # without repeat, with which single mode plays the same song again and again.
            await self._chime_modes(status, modes)
            await self._setvol(self.config.cue_volume)
            await self._command("playid", cue_id)
            self._cue = target.cue  # it sounded: a retry after a failure from here is silent
            await self._wait_cue(cue_id)
            # Stopped, the player seeks by starting the song at the position, which always
            # works; seeking the song it has just moved on to can fail ("Not seekable")
            # while its decoder is starting.
            await self._command("stop")
            await self._restore_modes(modes)
            if song_id is not None:
                if volume is not None:
                    # Playing: back at the dip, and the stage's fade brings it up; paused:
                    # silent for the moment it plays before the pause.
                    await self._setvol(min(volume, DUCK_VOLUME) if state == "play" else 0)
                try:
                    await self._command("seekid", song_id, elapsed)
                except PlayerRefused:
                    await self._command("playid", song_id)  # a stream cannot seek
                if state == "pause":
                    await self._command("pause", 1)
            if volume is not None and state != "play":
                await self._setvol(volume)
        finally:
            # Whatever went wrong, the session's music must not go on in single mode; and
            # the chime leaves the queue (in consume mode the player removed it already).
            # Cleaning up fails only when the player is gone: the first error is the one.
            with contextlib.suppress(DeviceError):
                await self._restore_modes(modes)
            with contextlib.suppress(DeviceError):
                await self._command("deleteid", cue_id)

    async def _chime_modes(self, status: Mapping[str, str], before: dict[str, str]) -> None:
        """Set crossfade 0, single 1 and repeat 0 for the chime, noting in `before` the
        values to put back."""
        if _int(status, "xfade"):
            before["crossfade"] = status["xfade"]
            await self._set_crossfade(0, status)
        if status.get("single", "0") != "1":
            before["single"] = status.get("single", "0")
            await self._command("single", 1)
        if status.get("repeat", "0") != "0":
            before["repeat"] = status.get("repeat", "0")
            await self._command("repeat", 0)

    async def _restore_modes(self, before: dict[str, str]) -> None:
        """Put back what `_chime_modes` changed (once: it empties `before`)."""
        while before:
            mode, value = before.popitem()
            if mode == "crossfade":
                await self._set_crossfade(float(value), {})
            else:
                await self._command(mode, value)

    async def _wait_cue(self, cue_id: str) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            status = await self._status()
            if status.get("songid") != cue_id or _state(status) != "play":
                return
            # A player that stalls on the chime must not hold the room: give up after its
            # length plus the usual timeout.
            remaining = began + _duration(status) + self.config.timeout - loop.time()
            if remaining <= 0:
                log.warning("%s: the cue did not end in time; going on", self.name)
                return
            await self._idle(["player"], min(remaining, IDLE_POLL))

    def dump_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return snapshot  # MpdSnapshot's JSON already

    def load_snapshot(self, data: Any) -> dict[str, Any]:
        return dict(data)

    async def snapshot(self) -> dict[str, Any]:
        """`MpdSnapshot.to_json()`: JSON, for the store."""
        status = await self._status()
        queue = await self._files()
        state = _state(status)
        return MpdSnapshot(
            state=state,
            queue=queue,
            song=_int(status, "song"),
            elapsed=_float(status, "elapsed") if state != "stop" else None,
            volume=_volume(status),
            random=status.get("random") == "1",
            repeat=status.get("repeat") == "1",
            single=status.get("single", "0"),
            consume=status.get("consume", "0"),
            crossfade=_int(status, "xfade") or 0,
        ).to_json()

    async def restore(self, snapshot: Any, transition: float) -> None:
        saved: MpdSnapshot | None
        try:
            saved = (
                snapshot if isinstance(snapshot, MpdSnapshot) else MpdSnapshot.from_json(snapshot)
            )
        except ValueError as exc:
            # A snapshot that cannot be read would fail every retry: stop the music instead.
            log.error("%s: cannot put the player back, stopping it instead: %s", self.name, exc)
            saved = None
        self._target = None
        status = await self._status()
        if _state(status) == "play":
            await self._fade_to(0, max(0.0, min(transition, RESTORE_FADE_MAX)))
        else:
            await self._cancel_fade()
        if saved is None or self.config.restore == "stop":
            await self._command("stop")
            self._loaded = None
            if saved is not None and saved.volume is not None:
                await self._setvol(saved.volume)
            return
        await self._put_back(saved)

    async def _put_back(self, snapshot: MpdSnapshot) -> None:
        await self._command("stop")
        await self._command("clear")
        self._loaded = None
        song: int | None = None  # the saved song's position in the queue as put back
        added = 0
        for index, file in enumerate(snapshot.queue):
            try:
                await self._command("add", file)
            except PlayerRefused as exc:
                # A file deleted meanwhile must not block the rest of the restore forever.
                log.warning("%s: could not put %r back in the queue: %s", self.name, file, exc)
                continue
            if index == snapshot.song:
                song = added
            added += 1
        await self._command("random", int(snapshot.random))
        await self._command("repeat", int(snapshot.repeat))
        await self._command("single", snapshot.single)
        await self._command("consume", snapshot.consume)
        await self._set_crossfade(snapshot.crossfade, await self._status())
        if snapshot.volume is not None:
            await self._setvol(0)  # silent while the position is set
        if song is not None:
            if snapshot.state == "stop":
                # MPD keeps a current song while stopped; only playing can set it.
                await self._command("play", song)
                await self._command("stop")
            else:
                try:
                    await self._command("seek", song, snapshot.elapsed or 0.0)
                except PlayerRefused:
                    await self._command("play", song)  # a stream cannot seek
                if snapshot.state == "pause":
                    await self._command("pause", 1)
        if snapshot.volume is not None:
            await self._setvol(snapshot.volume)
