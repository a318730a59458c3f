"""The one place that talks to a device of a room: it converges it to the desired state.

Callers only say what the room should be like (`show`, `end_session`); a background
task makes the device match. That one mechanism gives coalescing (five quick "next"
taps send one command, for the newest state), retries with backoff while a bridge or
broker is down, and an exact restore at the end from the snapshot taken before the
first change. Lights, distractions and music each get a Coordinator of their own.

Retrying is done here and only here. A backend makes one attempt per call and raises
DeviceError when the device is away; the coordinator marks the device degraded, backs
off (`retry_initial` doubling to `retry_max`, or at once when something new is asked)
and converges when it answers again. A backend keeps no timed retries of its own: the
Hue bridge only sends a request again at once when the bridge answered "busy" (see
ambiance.devices.lights.hue.bridge), within the one attempt. So the backoff's ceiling
(`retry_max`, 1 s by default) is what bounds how soon a device that is back is brought
to where it should be: at most about one ceiling after it answers again.

All its time is the clock's: the backoff, the poll and the time an attempt took, so a
test with `FakeClock(monotonic="fake")` drives them without real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ambiance.core.events import Event, EventBus
from ambiance.core.health import Availability
from ambiance.errors import DeviceError
from ambiance.infra.clock import Clock, Timer
from ambiance.infra.metrics import Metrics

log = logging.getLogger(__name__)

TargetT = TypeVar("TargetT")
StateT = TypeVar("StateT")
SnapT = TypeVar("SnapT")
TargetT_contra = TypeVar("TargetT_contra", contravariant=True)
StateT_co = TypeVar("StateT_co", covariant=True)


class Drifted(Exception):  # not an AmbianceError: a report, nothing failed
    """Raised by a device's `read()` when the device no longer holds what was applied
    (a player that restarted with an empty queue, a switch on again). `read()` only
    reports; the coordinator shows `state` (what the device is now, when it was read)
    and applies its newest target again."""

    def __init__(self, reason: str, state: Any = None) -> None:
        super().__init__(reason)
        self.state = state


class Unreadable(DeviceError):
    """Raised by a device's `read()` when part of it did not answer: `state` is what it
    could read, the rest marked unknown. The coordinator shows it, and the device is
    unavailable for this error as for any other."""

    code = "device_unreadable"

    def __init__(self, message: str, state: Any) -> None:
        super().__init__(message)
        self.state = state


class Device(Protocol[TargetT_contra, StateT_co, SnapT]):
    """What a coordinator needs of a backend (lights, distractions, music).

    `read()` reports the device's state and changes nothing; it may raise `Drifted`."""

    kind: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def read(self) -> StateT_co: ...

    async def apply(self, target: TargetT_contra) -> None: ...

    async def snapshot(self) -> SnapT: ...

    async def restore(self, snapshot: SnapT, transition: float) -> None: ...

    def dump_snapshot(self, snapshot: SnapT) -> Any:
        """The snapshot as JSON, for the store (each device knows its own)."""
        ...

    def load_snapshot(self, data: Any) -> SnapT: ...


@dataclass(frozen=True)
class Restore(Generic[SnapT]):
    """Put the device back as the snapshot has it."""

    snapshot: SnapT
    transition: float


class Coordinator(Generic[TargetT, StateT, SnapT]):
    def __init__(
        self,
        room: str,
        device: str,
        backend: Device[TargetT, StateT, SnapT],
        bus: EventBus,
        clock: Clock,
        *,
        retry_initial: float = 0.25,
        retry_max: float = 1.0,
        poll_interval: float = 30.0,
        on_snapshot: Callable[[SnapT], None] | None = None,
        on_restored: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.room = room
        self.device = device
        self.backend = backend
        self.bus = bus
        self.clock = clock
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.on_snapshot = on_snapshot  # to keep the snapshot safe (the store)
        self.on_restored = on_restored  # the device is back as the snapshot says (the store)
        self.health = Availability(room, device, backend.kind, bus, clock, metrics)
        self.state: StateT | None = None  # as last read from the device
        self.snapshot: SnapT | None = None
        self._desired: TargetT | Restore[SnapT] | None = None
        self._applied: TargetT | Restore[SnapT] | None = None
        self._want_snapshot = False
        self._started = False
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # The poll: one timer that stays armed across wakes, so the device is read every
        # `poll_interval` while idle (a timer made and cancelled at every change cost
        # more than the change itself with a thousand rooms).
        self._poll_timer: Timer | None = None
        self._poll_due = False
        self._idle = False  # waiting for a change or the poll (not backing off)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"{self.device}:{self.room}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        # Python 3.11's wait_for can swallow a cancellation that lands as its inner call
        # finishes; the flag ends the loop then, and the cancel is repeated until it took.
        while task is not None and not task.done():
            task.cancel()
            self._wake.set()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
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

    def resume_session(self, snapshot: SnapT | None) -> None:
        """Pick a session up again after a restart, with the snapshot taken at its start.

        Without one, no change had reached the device before the restart: take it now.
        """
        self.snapshot = snapshot
        self._want_snapshot = snapshot is None
        self._changed()

    def show(self, target: TargetT) -> None:
        self._desired = target
        self._changed()

    def end_session(self, transition: float) -> None:
        """Put the device back as it was before the session."""
        self._want_snapshot = False
        # No snapshot means no change ever reached the device: nothing to put back.
        self._desired = None if self.snapshot is None else Restore(self.snapshot, transition)
        self._changed()

    @property
    def desired(self) -> TargetT | None:
        """The target being shown (None while restoring or when nothing was asked)."""
        return None if isinstance(self._desired, Restore) else self._desired

    @property
    def restoring(self) -> bool:
        return isinstance(self._desired, Restore) and self._desired is not self._applied

    @property
    def synced(self) -> bool:
        return not self._pending()

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until the device matches what was asked; False if `timeout` passed first.

        `timeout` is the caller's own bound, in the loop's time, not the clock's: a test's
        wait stays a real bound (it fails, not hangs) under a fake clock.
        """
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

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
        while not self._stopping:
            self._wake.clear()
            began = self.clock.monotonic()
            try:
                await self._step(poll)
            except DeviceError as exc:
                self.health.failed(exc)
                self._unsure()
            except Exception as exc:  # a backend bug must not end the room's device for good
                log.exception("%s: %s backend failed", self.room, self.device)
                self.health.failed(exc)
                self._unsure()
            else:
                self.health.ok()
                delay = self.retry_initial
                if self._pending():
                    poll = False
                    continue
                self._synced.set()
                poll = await self._wait_idle()
                continue
            # Failed: try again after a backoff, or at once when something new is asked.
            # The backoff counts from the failed attempt's start, so the time an attempt
            # takes to fail (a timeout) does not add to it: attempts begin at most
            # `retry_max` apart.
            await self._wait(max(0.0, delay - (self.clock.monotonic() - began)))
            delay = min(delay * 2, self.retry_max)
            poll = True
            self._poll_due = False

    async def _step(self, poll: bool) -> None:
        if not self._started:
            await self.backend.start()
            self._started = True
        if self._want_snapshot and self.snapshot is None:
            self.snapshot = await self.backend.snapshot()
            self._want_snapshot = False
            if self.on_snapshot is not None:
                self.on_snapshot(self.snapshot)
        desired = self._desired
        if desired is not None and desired is not self._applied:
            if isinstance(desired, Restore):
                await self.backend.restore(desired.snapshot, desired.transition)
            else:
                await self.backend.apply(desired)
            self._applied = desired
            if isinstance(desired, Restore) and self._desired is desired:
                self.snapshot = None
                if self.on_restored is not None:
                    self.on_restored()
            await self._refresh(just_applied=True)
        elif poll or self.state is None:
            await self._refresh()

    def _unsure(self) -> None:
        """After a failure, the shown target counts as not applied: a device that was away
        may have come back in another state (a bridge restarted with its lights at their
        power-on defaults), so when it answers again it is brought to the target again.
        A restore is not redone: once it went through, the device is the user's again."""
        if self.desired is not None and self._applied is self._desired:
            self._applied = None
            self._synced.clear()

    async def _refresh(self, *, just_applied: bool = False) -> None:
        try:
            state = await self.backend.read()
        except Drifted as drift:
            self._keep(drift.state)
            if self.desired is None:
                return  # after the end a drift is the user's business
            self._applied = None
            self._synced.clear()
            if just_applied:
                # It did not hold what it was given a moment ago: applying it again at
                # once would spin, so this is a failure, backed off and reported.
                raise DeviceError(
                    f"{self.device} did not keep what was just applied ({drift})"
                ) from drift
            # Converging is ours: the loop applies the newest target again.
            log.info("%s: %s drifted (%s); applying it again", self.room, self.device, drift)
            return
        except Unreadable as exc:
            self._keep(exc.state)
            raise
        self._keep(state)

    def _keep(self, state: StateT | None) -> None:
        """Take `state` as the device's, telling the bus when it changed."""
        if state is None or state == self.state:
            return
        self.state = state
        self.bus.publish(
            Event(f"{self.device}.changed", self.room, self.clock.now(), {"device": self.device})
        )

    async def _wait_idle(self) -> bool:
        """Wait for a change or the poll; True when it is time to poll."""
        if not self._poll_due:  # it may have fallen due while the loop was busy
            if self._poll_timer is None:
                self._poll_timer = self.clock.call_later(self.poll_interval, self._on_poll_timer)
            self._idle = True
            try:
                await self._wake.wait()
            finally:
                self._idle = False
        poll, self._poll_due = self._poll_due, False
        return poll

    def _on_poll_timer(self) -> None:
        self._poll_timer = None
        self._poll_due = True
        if self._idle:
            self._wake.set()
        # Otherwise the loop is busy or backing off: it reads the device on its next
        # attempt anyway, or polls when it next waits.

    async def _wait(self, timeout: float) -> bool:
        """Wait for a change or `timeout`; True when woken by a change."""
        # The clock's wait, which for the real clock is asyncio.timeout, not wait_for:
        # wait_for (3.11) runs the wait in a task of its own, and the hops between the two
        # tasks put a tap's device change behind everything else the tap queued on the
        # loop (state messages, the store).
        return await self.clock.wait(self._wake, timeout)
