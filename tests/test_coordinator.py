"""The device coordinator, on lights: coalescing, snapshot before the first change, exact restore,
and degrading then recovering when the backend fails. Its backoff and poll run on a fake
clock that the tests move: no real waiting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from ambiance.core.coordinator import Coordinator, Drifted, Unreadable
from ambiance.core.events import EventBus
from ambiance.devices.lights.base import LightState, LightTarget, Snapshot
from ambiance.devices.lights.virtual import VirtualLight, VirtualLights
from ambiance.errors import DeviceUnavailable
from ambiance.infra.clock import FakeClock, Timer
from tests.helpers import EventLog

pytestmark = pytest.mark.anyio


class FlakyLights(VirtualLights):
    """Virtual lights that can be made to fail like an unreachable bridge."""

    def __init__(self) -> None:
        super().__init__(
            [VirtualLight("1", "a", bri=254, ct=250), VirtualLight("2", "b", on=False)]
        )
        self.down = False
        self.calls: list[str] = []
        self.clock: FakeClock | None = None  # given: when each call was made, in `at`
        self.at: list[float] = []

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.clock is not None:
            self.at.append(self.clock.monotonic())
        if self.down:
            raise DeviceUnavailable("bridge unreachable")

    async def read(self) -> list[LightState]:
        self._check("read")
        return await super().read()

    async def apply(self, target: LightTarget) -> None:
        self._check("apply")
        await super().apply(target)

    async def snapshot(self) -> Snapshot:
        self._check("snapshot")
        return await super().snapshot()

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        self._check("restore")
        await super().restore(snapshot, transition)


LightsCoordinator = Coordinator[LightTarget, list[LightState], Snapshot]
Setup = tuple[LightsCoordinator, FlakyLights, EventLog]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    backend = FlakyLights()
    bus = EventBus()
    log = EventLog(bus)
    coordinator: LightsCoordinator = Coordinator(
        "bedroom",
        "lights",
        backend,
        bus,
        FakeClock(monotonic="fake"),
        retry_initial=0.01,
        retry_max=0.05,
    )
    await coordinator.start()
    assert await coordinator.wait_synced(5)
    try:
        yield coordinator, backend, log
    finally:
        await coordinator.stop()


WARM = LightTarget(on=True, brightness=20, kelvin=2200, transition=3)
DIM = LightTarget(on=True, brightness=5, kelvin=2000, transition=3)


def states(backend: VirtualLights) -> list[tuple[bool, int, int]]:
    return [(light.on, light.bri, light.ct) for light in backend.lights]


async def test_session_snapshots_then_applies_then_restores_exactly(setup: Setup) -> None:
    coordinator, backend, _ = setup
    before = states(backend)
    coordinator.begin_session()
    coordinator.show(WARM)
    assert await coordinator.wait_synced(5)
    assert backend.calls.index("snapshot") < backend.calls.index("apply")
    assert states(backend) == [(True, 51, 455), (True, 51, 455)]
    coordinator.end_session(2)
    assert await coordinator.wait_synced(5)
    assert states(backend) == before
    assert coordinator.snapshot is None


async def test_quick_changes_coalesce_to_the_newest(setup: Setup) -> None:
    coordinator, backend, _ = setup
    backend.calls.clear()
    for brightness in (10, 20, 30, 40, 50):
        coordinator.show(LightTarget(on=True, brightness=brightness, kelvin=2700))
    assert await coordinator.wait_synced(5)
    assert backend.calls.count("apply") == 1
    assert backend.lights[0].bri == 127


async def test_backend_down_degrades_then_converges_when_back(setup: Setup) -> None:
    coordinator, backend, log = setup
    backend.down = True
    coordinator.begin_session()
    coordinator.show(WARM)
    await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
    assert not coordinator.health.available
    assert not coordinator.synced
    coordinator.show(DIM)  # a newer wish while down: only it is applied later
    backend.down = False
    await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
    assert await coordinator.wait_synced(5)
    assert states(backend)[0] == (True, 13, 500)
    # The snapshot was taken when the bridge came back, before the first change.
    assert coordinator.snapshot is not None
    assert [light.state["bri"] for light in coordinator.snapshot.lights] == [254, 200]
    health_events = [e for e in log.events if e.kind == "device.health"]
    assert len(health_events) == 2  # logged once when it failed, once when it recovered


async def test_pending_restore_then_new_session_keeps_the_old_snapshot(
    setup: Setup,
) -> None:
    coordinator, backend, log = setup
    before = states(backend)
    coordinator.begin_session()
    coordinator.show(WARM)
    assert await coordinator.wait_synced(5)
    backend.down = True
    coordinator.end_session(1)  # cannot reach the lights
    await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
    coordinator.begin_session()  # a new session before the restore happened
    coordinator.show(DIM)
    backend.down = False
    assert await coordinator.wait_synced(5)
    coordinator.end_session(1)
    assert await coordinator.wait_synced(5)
    assert states(backend) == before


async def test_end_without_any_change_leaves_the_lights_alone(setup: Setup) -> None:
    coordinator, backend, _ = setup
    backend.down = True
    coordinator.begin_session()
    coordinator.end_session(1)
    assert coordinator.synced
    assert coordinator.desired is None


async def test_idle_it_polls_and_sees_a_change_made_outside() -> None:
    """A wall switch or another app moves a light: the next poll notices."""
    backend = FlakyLights()
    bus = EventBus()
    log = EventLog(bus)
    clock = FakeClock(monotonic="fake")
    coordinator: LightsCoordinator = Coordinator(
        "bedroom", "lights", backend, bus, clock, poll_interval=0.05
    )
    await coordinator.start()
    try:
        assert await coordinator.wait_synced(5)
        for bri in (10, 90):  # twice: the poll is armed again after each one
            mark = len(log.events)
            backend.lights[1].on, backend.lights[1].bri = True, bri
            await clock.run(0.05)
            await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
            assert (
                coordinator.state is not None and coordinator.state[1] == backend.lights[1].state()
            )
        # Changes asked meanwhile are applied as ever, and the polls go on after them.
        coordinator.show(WARM)
        assert await coordinator.wait_synced(5)
        mark = len(log.events)
        backend.lights[0].bri = 3
        await clock.run(0.05)
        await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
        assert coordinator.state is not None and coordinator.state[0] == backend.lights[0].state()
    finally:
        await coordinator.stop()


async def test_a_failure_while_polling_backs_off_then_recovers() -> None:
    backend = FlakyLights()
    bus = EventBus()
    log = EventLog(bus)
    clock = FakeClock(monotonic="fake")
    coordinator: LightsCoordinator = Coordinator(
        "bedroom",
        "lights",
        backend,
        bus,
        clock,
        retry_initial=0.01,
        retry_max=0.05,
        poll_interval=0.02,
    )
    await coordinator.start()
    try:
        assert await coordinator.wait_synced(5)
        backend.down = True  # the next poll fails
        await clock.run(0.02)
        await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
        backend.down = False
        await clock.run(0.05)  # the backoff
        await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
        mark = len(log.events)
        backend.lights[0].bri = 7  # and polling goes on
        await clock.run(0.02)
        await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
    finally:
        await coordinator.stop()


# --- the clock drives the backoff and the poll ------------------------------------------


class CountingClock(FakeClock):
    """A fake clock that counts the monotonic timers made on it."""

    def __init__(self) -> None:
        super().__init__(monotonic="fake")
        self.made = 0

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        self.made += 1
        return super().call_later(delay, callback)


async def started(
    clock: FakeClock, **kwargs: float
) -> tuple[LightsCoordinator, FlakyLights, EventLog]:
    backend = FlakyLights()
    backend.clock = clock
    bus = EventBus()
    coordinator: LightsCoordinator = Coordinator("bedroom", "lights", backend, bus, clock, **kwargs)
    log = EventLog(bus)
    await coordinator.start()
    assert await coordinator.wait_synced(5)
    return coordinator, backend, log


async def failing(coordinator: LightsCoordinator, backend: FlakyLights, log: EventLog) -> None:
    """Ask for a change the backend cannot make: the room's lights are degraded."""
    backend.down = True
    coordinator.show(WARM)
    await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])


async def test_the_backoff_doubles_to_its_ceiling_on_the_clock() -> None:
    clock = FakeClock(monotonic="fake")
    coordinator, backend, log = await started(clock, retry_initial=0.25, retry_max=2.0)
    try:
        await failing(coordinator, backend, log)
        failed_at = backend.at[-1]
        began = time.monotonic()
        await clock.run(10)
        assert time.monotonic() - began < 1.0  # ten seconds of backoff, none of it waited
        attempts = [t - failed_at for t in backend.at[backend.calls.index("apply") :]]
        # Attempts begin retry_initial apart, then twice as far each time, up to retry_max.
        assert attempts == pytest.approx([0, 0.25, 0.75, 1.75, 3.75, 5.75, 7.75, 9.75])
        assert set(backend.calls[-len(attempts) :]) == {"apply"}
        assert not coordinator.health.available
        assert [e.kind for e in log.events].count("device.health") == 1  # degraded once

        backend.down = False  # back: the next attempt, 2 s after the last (at 11.75), converges
        await clock.run(1.7)
        assert not coordinator.synced
        await clock.run(0.05)
        await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
        assert coordinator.synced and states(backend)[0] == (True, 51, 455)
    finally:
        await coordinator.stop()


async def test_a_change_ends_the_backoff_at_once() -> None:
    clock = FakeClock(monotonic="fake")
    coordinator, backend, log = await started(clock, retry_initial=60, retry_max=60)
    try:
        await failing(coordinator, backend, log)
        backend.down = False
        coordinator.show(DIM)  # a minute of backoff left, and the clock does not move
        assert await coordinator.wait_synced(5)
        assert states(backend)[0] == (True, 13, 500)
    finally:
        await coordinator.stop()


async def test_the_poll_is_one_timer_that_stays_armed() -> None:
    clock = CountingClock()
    coordinator, backend, _ = await started(clock, poll_interval=30)
    try:
        assert clock.made == 1 and clock.pending == 1  # armed once idle
        for target in (WARM, DIM, WARM):  # changes wake the loop, not the poll
            coordinator.show(target)
            assert await coordinator.wait_synced(5)
        assert clock.made == 1
        reads = backend.calls.count("read")
        await clock.run(29.9)
        assert backend.calls.count("read") == reads
        await clock.run(0.1)  # 30 s after it was armed
        assert backend.calls.count("read") == reads + 1
        await clock.run(60)  # and every 30 s after that, one new timer each time
        assert backend.calls.count("read") == reads + 3
        assert clock.made == 4 and clock.pending == 1
    finally:
        await coordinator.stop()
    assert clock.pending == 0  # stop() cancelled it


class DriftingLights(FlakyLights):
    """Lights that, once told to, report at their next read that they lost what was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.drift = False

    async def read(self) -> list[LightState]:
        if self.drift:
            self.drift = False  # a drift is reported once, as a restarted player's is
            raise Drifted("the lights came back at their power-on state")
        return await super().read()


async def test_a_drift_reported_by_read_is_converged_by_the_coordinator() -> None:
    backend = DriftingLights()
    clock = FakeClock(monotonic="fake")
    coordinator: LightsCoordinator = Coordinator(
        "bedroom", "lights", backend, EventBus(), clock, poll_interval=30
    )
    await coordinator.start()
    try:
        coordinator.begin_session()
        coordinator.show(WARM)
        assert await coordinator.wait_synced(5)
        assert backend.calls.count("apply") == 1
        for light in backend.lights:  # the bulbs lost power: back at full, cool white
            light.on, light.bri, light.ct = True, 254, 153
        backend.drift = True
        await clock.run(30)  # the poll reads, hears of the drift, and applies again
        assert await coordinator.wait_synced(5)
        assert backend.calls.count("apply") == 2
        assert states(backend) == [(True, 51, 455), (True, 51, 455)]

        # After the end the lights are the user's again: a drift then is not undone.
        coordinator.end_session(1)
        assert await coordinator.wait_synced(5)
        backend.drift = True
        await clock.run(30)
        assert await coordinator.wait_synced(5)
        assert backend.calls.count("apply") == 2
        assert backend.calls.count("restore") == 1
    finally:
        await coordinator.stop()


async def test_a_device_that_answers_again_is_brought_to_the_target_again() -> None:
    """Away, then back in another state (a bridge restarted with its lights at their
    power-on defaults): when it answers again, the target is applied again."""
    clock = FakeClock(monotonic="fake")
    coordinator, backend, log = await started(
        clock, retry_initial=0.01, retry_max=0.05, poll_interval=0.02
    )
    try:
        coordinator.show(WARM)
        assert await coordinator.wait_synced(5)
        assert backend.calls.count("apply") == 1
        backend.down = True
        await clock.run(0.02)  # the poll fails
        await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
        assert not coordinator.synced  # nobody knows what it shows now
        for light in backend.lights:
            light.on, light.bri, light.ct = True, 254, 366
        backend.down = False
        await clock.run(0.05)  # the backoff
        await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
        assert await coordinator.wait_synced(5)
        assert backend.calls.count("apply") == 2
        assert states(backend) == [(True, 51, 455), (True, 51, 455)]

        # After the end the device is the user's: an outage then changes nothing.
        coordinator.end_session(1)
        assert await coordinator.wait_synced(5)
        backend.down = True
        await clock.run(0.02)
        await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
        backend.down = False
        await clock.run(0.05)
        assert await coordinator.wait_synced(5)
        assert (backend.calls.count("apply"), backend.calls.count("restore")) == (2, 0)
    finally:
        await coordinator.stop()


class StubbornLights(FlakyLights):
    """Lights that never keep what they are given: every read says they drifted."""

    async def read(self) -> list[LightState]:
        self._check("read")
        raise Drifted("back at full brightness", await super().read())


async def test_a_drift_right_after_an_apply_is_a_failure_backed_off_not_a_spin() -> None:
    clock = FakeClock(monotonic="fake")
    backend = StubbornLights()
    bus = EventBus()
    log = EventLog(bus)
    coordinator: LightsCoordinator = Coordinator(
        "bedroom", "lights", backend, bus, clock, retry_initial=0.25, retry_max=1.0
    )
    await coordinator.start()
    try:
        coordinator.show(WARM)
        event = await log.wait_for(lambda e: e.kind == "device.health")
        assert "did not keep what was just applied (back at full brightness)" in event.data["error"]
        assert backend.calls.count("apply") == 1
        await clock.run(2)  # the backoff: 0.25, 0.5, 1 s: three attempts more, no spinning
        assert backend.calls.count("apply") == 4
        assert not coordinator.synced and not coordinator.health.available
        assert coordinator.state == await VirtualLights.read(backend)  # what it really shows
    finally:
        await coordinator.stop()


class HalfReadLights(FlakyLights):
    async def read(self) -> list[LightState]:
        self._check("read")
        seen = (await super().read())[:1]
        raise Unreadable("light b did not answer", seen)


async def test_a_read_that_fails_in_part_shows_the_part_it_read() -> None:
    backend = HalfReadLights()
    bus = EventBus()
    log = EventLog(bus)
    coordinator: LightsCoordinator = Coordinator(
        "bedroom", "lights", backend, bus, FakeClock(monotonic="fake")
    )
    await coordinator.start()
    try:
        event = await log.wait_for(lambda e: e.kind == "device.health")
        assert event.data["error"] == "light b did not answer"
        await log.wait_for(lambda e: e.kind == "lights.changed")
        assert coordinator.state == [backend.lights[0].state()]
    finally:
        await coordinator.stop()
