"""The one place that talks to a room's lights: it converges them to the desired state.

Callers only say what the room should look like (`show`, `end_session`); a background
task makes the lights match. That one mechanism gives coalescing (five quick "next"
taps send one command, for the newest state), retries with backoff while a bridge is
down, and an exact restore at the end from the snapshot taken before the first change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..errors import DeviceError
from ..events import Event, EventBus
from ..health import Availability
from .base import LightsBackend, LightState, LightTarget, Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restore:
    """Put the room back as the snapshot has it."""

    snapshot: Snapshot
    transition: float


Desired = LightTarget | Restore


class LightsCoordinator:
    def __init__(
        self,
        room: str,
        backend: LightsBackend,
        bus: EventBus,
        clock: Clock,
        *,
        retry_initial: float = 0.25,
        retry_max: float = 2.0,
        poll_interval: float = 30.0,
    ) -> None:
        self.room = room
        self.backend = backend
        self.bus = bus
        self.clock = clock
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.health = Availability(room, "lights", backend.kind, bus, clock)
        self.lights: list[LightState] = []  # as last read from the devices
        self.snapshot: Snapshot | None = None
        self._desired: Desired | None = None
        self._applied: Desired | None = None
        self._want_snapshot = False
        self._started = False
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lights:{self.room}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.backend.stop()

    # --- what the room asks for -----------------------------------------------------

    def begin_session(self) -> None:
        """Take a snapshot before the next change, unless the room still awaits a restore."""
        if isinstance(self._desired, Restore) and self._desired is not self._applied:
            # The last session's restore never reached the lights: the room is still as
            # that session left it, and its snapshot is still what "as it was" means.
            self._desired = None
        elif self.snapshot is None:
            self._want_snapshot = True
        self._changed()

    def show(self, target: LightTarget) -> None:
        self._desired = target
        self._changed()

    def end_session(self, transition: float) -> None:
        """Put the lights back as they were before the session."""
        self._want_snapshot = False
        # No snapshot means no change ever reached the lights: nothing to put back.
        self._desired = None if self.snapshot is None else Restore(self.snapshot, transition)
        self._changed()

    @property
    def desired(self) -> Desired | None:
        return self._desired

    @property
    def synced(self) -> bool:
        return not self._pending()

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until the lights match what was asked; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def view(self) -> dict[str, Any]:
        desired = self._desired
        return {
            "backend": self.backend.kind,
            "synced": self.synced,
            "restoring": isinstance(desired, Restore) and desired is not self._applied,
            "desired": (
                {
                    "on": desired.on,
                    "brightness": desired.brightness,
                    "kelvin": desired.kelvin,
                    "transition": desired.transition,
                }
                if isinstance(desired, LightTarget)
                else None
            ),
            "lights": [
                {
                    "id": light.id,
                    "name": light.name,
                    "on": light.on,
                    "brightness": light.brightness,
                    "kelvin": light.kelvin,
                    "reachable": light.reachable,
                }
                for light in self.lights
            ],
            "health": self.health.view(),
        }

    # --- the loop -------------------------------------------------------------------

    def _changed(self) -> None:
        self._synced.clear()
        self._wake.set()

    def _pending(self) -> bool:
        if self._want_snapshot and self.snapshot is None:
            return True
        return self._desired is not None and self._desired is not self._applied

    async def _run(self) -> None:
        delay = self.retry_initial
        poll = True
        while True:
            self._wake.clear()
            try:
                await self._step(poll)
            except DeviceError as exc:
                self.health.failed(exc)
            except Exception as exc:  # a backend bug must not end the room's lights for good
                log.exception("%s: lights backend failed", self.room)
                self.health.failed(exc)
            else:
                self.health.ok()
                delay = self.retry_initial
                if self._pending():
                    poll = False
                    continue
                self._synced.set()
                poll = not await self._wait(self.poll_interval)
                continue
            # Failed: try again after a backoff, or at once when something new is asked.
            await self._wait(delay)
            delay = min(delay * 2, self.retry_max)
            poll = True

    async def _step(self, poll: bool) -> None:
        if not self._started:
            await self.backend.start()
            self._started = True
        if self._want_snapshot and self.snapshot is None:
            self.snapshot = await self.backend.snapshot()
            self._want_snapshot = False
        desired = self._desired
        if desired is not None and desired is not self._applied:
            if isinstance(desired, Restore):
                await self.backend.restore(desired.snapshot, desired.transition)
            else:
                await self.backend.apply(desired)
            self._applied = desired
            if isinstance(desired, Restore) and self._desired is desired:
                self.snapshot = None
            await self._refresh()
        elif poll or not self.lights:
            await self._refresh()

    async def _refresh(self) -> None:
        lights = await self.backend.read()
        if lights != self.lights:
            self.lights = lights
            self.bus.publish(
                Event("lights.changed", self.room, self.clock.now(), {"lights": self.view()})
            )

    async def _wait(self, timeout: float) -> bool:
        """Wait for a change or `timeout`; True when woken by a change."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True
