"""`MpdMusic`: the music of one room on an MPD (or Mopidy) player.

After a reconnect, the next `read()` checks the player: one that restarted (with another
queue, or none), or that no longer plays the room's music at its volume, is reported as
`Drifted`, and the coordinator applies the room's target again. `read()` itself only
reports.

Only commands that both MPD and Mopidy know are used; `crossfade`, which Mopidy refuses,
is sent only when the value changes and a refusal is logged once and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

from ambiance.core.coordinator import Drifted
from ambiance.devices.music.base import MusicState, MusicTarget
from ambiance.devices.music.mpd.client import (
    MpdConnection,
    PlayerRefused,
    as_float,
    percent,
    state_of,
    volume_of,
)
from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.devices.music.mpd.cue import Cue
from ambiance.devices.music.mpd.fades import Fader, Sleep
from ambiance.devices.music.mpd.snapshot import MpdSnapshot, put_back, take_snapshot
from ambiance.errors import DeviceUnavailable

log = logging.getLogger(__package__)  # the package's: "ambiance.devices.music.mpd"

RESTORE_FADE_MAX = 10.0  # seconds: an end-of-session fade longer than this feels like a hang


class MpdMusic:
    """The music of one room on an MPD (or Mopidy) player."""

    kind = "mpd"

    def __init__(self, config: MpdMusicConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self._player = MpdConnection(config)
        self._fader = Fader(self._player, sleep)
        self._cue = Cue(self._player, self._fader)
        self._target: MusicTarget | None = None  # what we were last asked to play
        self._loaded: MusicTarget | None = None  # whose music is in the queue, when ours
        self._queue: tuple[str, ...] = ()  # the files we loaded, to recognise them later

    @property
    def name(self) -> str:
        return self._player.name

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        # A player that is down now is not an error: the first call raises
        # DeviceUnavailable, and the coordinator retries until it is back.
        try:
            await self._player.connected()
        except DeviceUnavailable as exc:
            log.info("%s: not reachable yet (%s)", self.name, exc)

    async def stop(self) -> None:
        await self._fader.cancel()
        self._player.close()

    async def wait_faded(self) -> None:
        """Wait until the running fade (if any) has reached its volume or was cancelled."""
        await self._fader.wait()

    # --- the MusicBackend protocol ----------------------------------------------------

    async def read(self) -> MusicState:
        reconnected = await self._check_queue()
        player = self._player
        status = await player.status()
        target = self._target
        if reconnected and target is not None and not self._holds(target, status):
            # The player came back without the room's music (restarted, perhaps empty):
            # the coordinator applies the target again.
            raise Drifted(f"{self.name} no longer plays the room's music")
        song = cast(dict[str, str], await player.command("currentsong"))
        volume = volume_of(status)
        return MusicState(
            state=state_of(status) if "state" in status else "unknown",
            volume=float(volume) if volume is not None else None,
            playlist=self._loaded.playlist if self._loaded is not None else None,
            song=(song.get("title") or song.get("file")) if song else None,
            elapsed=as_float(status, "elapsed"),
        )

    async def apply(self, target: MusicTarget) -> None:
        await self._check_queue()
        if target.cue != self._cue.played:
            if self.config.cue is not None:
                await self._cue.play(self.config.cue, target)
            self._cue.played = target.cue
        await self._converge(target)

    async def _check_queue(self) -> bool:
        """After a reconnect, forget our music unless the queue is still what we loaded.
        True when there was a reconnect to check."""
        player = self._player
        await player.connected()  # a reconnect, if there is one, happens here
        if not player.take_reconnected():
            return False
        if self._loaded is not None and await player.files() != self._queue:
            log.info("%s: the queue changed while we were away; loading the music again", self.name)
            self._loaded = None
        return True

    def _holds(self, target: MusicTarget, status: Mapping[str, str]) -> bool:
        """True when the player plays `target`'s music, as we loaded it, at its volume."""
        volume = volume_of(status)
        return (
            target.same_music(self._loaded)
            and state_of(status) == "play"
            and (volume is None or volume == percent(target.volume))
        )

    async def _converge(self, target: MusicTarget) -> None:
        player, fader = self._player, self._fader
        status = await player.status()
        playing = state_of(status) == "play"
        if target.stop:
            if playing:
                await fader.to(0, target.fade)
            else:
                await fader.cancel()
            await player.command("stop")
            self._target = self._loaded = None
            return
        self._target = target
        await player.set_crossfade(target.crossfade, status)
        if target.same_music(self._loaded):
            if not playing:
                await player.command("play")  # resumes when paused, starts when stopped
            await fader.start(target.volume, target.fade)
            return
        # New music: out with the old (faded out first, so the cut is silent), in with the new.
        if playing:
            await fader.to(0, target.fade)
        else:
            await fader.cancel()
        self._loaded = None  # until the new music is in
        await player.command("clear")
        if target.playlist is not None:
            try:
                await player.command("load", target.playlist)
            except PlayerRefused as exc:
                raise PlayerRefused(
                    f"{self.name} has no playlist {target.playlist!r} ({exc.reply})",
                    reply=exc.reply,
                ) from exc
        for track in target.tracks:
            try:
                await player.command("add", track)
            except PlayerRefused as exc:
                raise PlayerRefused(
                    f"{self.name} has no track {track!r} ({exc.reply})", reply=exc.reply
                ) from exc
        self._queue = await player.files()
        await fader.setvol(0)
        await player.command("play")
        self._loaded = target
        await fader.start(target.volume, target.fade)

    def dump_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return snapshot  # MpdSnapshot's JSON already

    def load_snapshot(self, data: Any) -> dict[str, Any]:
        return dict(data)

    async def snapshot(self) -> dict[str, Any]:
        """`MpdSnapshot.to_json()`: JSON, for the store."""
        return (await take_snapshot(self._player)).to_json()

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
        player, fader = self._player, self._fader
        status = await player.status()
        if state_of(status) == "play":
            await fader.to(0, max(0.0, min(transition, RESTORE_FADE_MAX)))
        else:
            await fader.cancel()
        if saved is None or self.config.restore == "stop":
            await player.command("stop")
            self._loaded = None
            if saved is not None and saved.volume is not None:
                await fader.setvol(saved.volume)
            return
        self._loaded = None  # the queue is the snapshot's from here on
        await put_back(player, fader, saved)
