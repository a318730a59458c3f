"""The stage chime (`config.cue`, a file in the player's library), played between stages.

The music dips to DUCK_VOLUME, the chime is inserted before the current song and played
in single mode (so the player halts after it instead of running on into the music at the
chime's volume), `idle player` says when it ended, and the song goes on from where it
was when the chime began (not from before the dip), coming back up with the stage's fade.
A chime missing from the library is warned about once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from ambiance.devices.music.base import MusicTarget
from ambiance.devices.music.mpd.client import (
    MpdConnection,
    PlayerRefused,
    as_float,
    as_int,
    duration_of,
    state_of,
    volume_of,
)
from ambiance.devices.music.mpd.fades import Fader
from ambiance.errors import DeviceError

log = logging.getLogger(__package__)  # the package's: "ambiance.devices.music.mpd"

DUCK_VOLUME = 10  # percent: the music dips to this before the chime and comes back from it
DUCK_FADE = 1.0  # seconds at most to dip before the chime: a stage change should feel prompt
IDLE_POLL = 1.0  # seconds: re-check the player this often while waiting for the chime to end


class Cue:
    """Plays the chime once per new `MusicTarget.cue` value."""

    def __init__(self, player: MpdConnection, fader: Fader) -> None:
        self.player = player
        self.fader = fader
        self.played = 0  # the last cue value played (the room counts from 0: 0 means none)

    async def play(self, cue: str, target: MusicTarget) -> None:
        """Dip the music, play the chime, then go back to the song where it was."""
        player, fader = self.player, self.fader
        await fader.cancel()  # the volume it has got to is the one to dip from
        status = await player.status()
        state = state_of(status)
        song_id = status.get("songid") if state != "stop" else None
        elapsed = as_float(status, "elapsed") or 0.0
        volume = volume_of(status)
        # Inserted just before the current song (or at the end when none plays).
        position = as_int(status, "song") if song_id is not None else None
        try:
            cue_id = str(
                await player.command("addid", cue, *([position] if position is not None else []))
            )
        except PlayerRefused as exc:
            player.warn_once(
                "cue",
                "%s: no cue %r in the player's library (%s); stages change without a chime "
                "(`ambiance chime --out <music dir>/ambiance` writes one)",
                player.name,
                cue,
                exc.reply,
            )
            return
        modes: dict[str, str] = {}
        try:
            if state == "play" and volume is not None:
                await fader.to(min(volume, DUCK_VOLUME), min(target.fade, DUCK_FADE))
                # The song played on while the music dipped: it goes on from where it is
                # now, or the dip's second would be heard twice.
                now = await player.status()
                if now.get("songid") == song_id:
                    elapsed = as_float(now, "elapsed") or elapsed
            # The chime alone and once: no crossfade into it, and the player halts after it
            # (single mode) rather than run on into the music at the chime's volume, and
            # without repeat, with which single mode plays the same song again and again.
            await self._chime_modes(status, modes)
            await fader.setvol(player.config.cue_volume)
            await player.command("playid", cue_id)
            self.played = target.cue  # it sounded: a retry after a failure from here is silent
            await self._wait(cue_id)
            # Stopped, the player seeks by starting the song at the position, which always
            # works; seeking the song it has just moved on to can fail ("Not seekable")
            # while its decoder is starting.
            await player.command("stop")
            await self._restore_modes(modes)
            if song_id is not None:
                if volume is not None:
                    # Playing: back at the dip, and the stage's fade brings it up; paused:
                    # silent for the moment it plays before the pause.
                    await fader.setvol(min(volume, DUCK_VOLUME) if state == "play" else 0)
                try:
                    await player.command("seekid", song_id, elapsed)
                except PlayerRefused:
                    await player.command("playid", song_id)  # a stream cannot seek
                if state == "pause":
                    await player.command("pause", 1)
            if volume is not None and state != "play":
                await fader.setvol(volume)
        finally:
            # Whatever went wrong, the session's music must not go on in single mode; and
            # the chime leaves the queue (in consume mode the player removed it already).
            # Cleaning up fails only when the player is gone: the first error is the one.
            with contextlib.suppress(DeviceError):
                await self._restore_modes(modes)
            with contextlib.suppress(DeviceError):
                await player.command("deleteid", cue_id)

    async def _chime_modes(self, status: Mapping[str, str], before: dict[str, str]) -> None:
        """Set crossfade 0, single 1 and repeat 0 for the chime, noting in `before` the
        values to put back."""
        player = self.player
        if as_int(status, "xfade"):
            before["crossfade"] = status["xfade"]
            await player.set_crossfade(0, status)
        if status.get("single", "0") != "1":
            before["single"] = status.get("single", "0")
            await player.command("single", 1)
        if status.get("repeat", "0") != "0":
            before["repeat"] = status.get("repeat", "0")
            await player.command("repeat", 0)

    async def _restore_modes(self, before: dict[str, str]) -> None:
        """Put back what `_chime_modes` changed (once: it empties `before`)."""
        while before:
            mode, value = before.popitem()
            if mode == "crossfade":
                await self.player.set_crossfade(float(value), {})
            else:
                await self.player.command(mode, value)

    async def _wait(self, cue_id: str) -> None:
        """Until the chime has ended (or stalled for longer than it lasts)."""
        player = self.player
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            status = await player.status()
            if status.get("songid") != cue_id or state_of(status) != "play":
                return
            # A player that stalls on the chime must not hold the room: give up after its
            # length plus the usual timeout.
            remaining = began + duration_of(status) + player.config.timeout - loop.time()
            if remaining <= 0:
                log.warning("%s: the cue did not end in time; going on", player.name)
                return
            await player.idle(["player"], min(remaining, IDLE_POLL))
