"""Stepped fades: MPD has no fade command, so a fade is a run of `setvol` steps.

A fade runs in a background task (every `fade_step` seconds a step), so `apply()` returns
while the music swells, and a newer fade cancels the older one where it has got to.
Fades that must end before the next command (out before `clear`/`load`, out before a
restore) are awaited.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from ambiance.devices.music.mpd.client import MpdConnection, PlayerRefused, percent, volume_of
from ambiance.errors import DeviceError

log = logging.getLogger(__package__)  # the package's: "ambiance.devices.music.mpd"

Sleep = Callable[[float], Awaitable[None]]


class Fader:
    """The volume of one player: at most one fade at a time."""

    def __init__(self, player: MpdConnection, sleep: Sleep) -> None:
        self.player = player
        self._sleep = sleep  # between fade steps; tests may pass a faster one
        self._task: asyncio.Task[None] | None = None

    async def cancel(self) -> None:
        """Stop the running fade where it has got to, and wait until it has stopped."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def start(self, volume: float, seconds: float) -> asyncio.Task[None]:
        """Start a fade from the volume now to `volume` over `seconds` in the background,
        cancelling the one that runs; await the task where the order matters."""
        await self.cancel()
        start = volume_of(await self.player.status())
        task = asyncio.create_task(
            self._steps(start, percent(volume), seconds), name=f"fade:{self.player.name}"
        )
        self._task = task
        return task

    async def to(self, volume: float, seconds: float) -> None:
        """A fade that must be over before the caller goes on."""
        await (await self.start(volume, seconds))

    async def wait(self) -> None:
        """Wait until the running fade (if any) has reached its volume or was cancelled."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])

    async def setvol(self, volume: float) -> None:
        """Set the volume now, with no fade (and stop the fade that runs)."""
        await self.cancel()
        try:
            await self.player.command("setvol", percent(volume))
        except PlayerRefused as exc:
            self._no_volume(exc)

    async def _steps(self, start: int | None, end: int, seconds: float) -> None:
        player = self.player
        if start is None:
            player.warn_once(
                "mixer", "%s reports no volume (no mixer?): music plays without fades", player.name
            )
            return
        step = player.config.fade_step
        count = max(1, math.ceil(seconds / step - 1e-9)) if seconds > 0 and start != end else 1
        sent = start
        try:
            for i in range(1, count + 1):
                if count > 1:
                    await self._sleep(step)
                volume = end if i == count else round(start + (end - start) * i / count)
                if volume != sent or i == count:  # the last step sets the target exactly
                    await player.command("setvol", volume)
                    sent = volume
        except PlayerRefused as exc:
            self._no_volume(exc)
        except DeviceError as exc:
            # The player went away mid-fade; the next call says so to the coordinator, and
            # after the reconnect `read()` reports the music drifted, so it is applied again.
            log.debug("%s: fade stopped: %s", player.name, exc)
        except Exception:  # nobody awaits a background fade: a bug must still be seen
            log.exception("%s: fade failed", player.name)

    def _no_volume(self, exc: PlayerRefused) -> None:
        self.player.warn_once(
            "setvol", "%s does not take volume changes: %s", self.player.name, exc
        )
