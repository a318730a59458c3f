"""The device coordinator, on lights: coalescing, snapshot before the first change, exact restore,
and degrading then recovering when the backend fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ambiance.core.coordinator import Coordinator
from ambiance.core.events import EventBus
from ambiance.devices.lights.base import LightState, LightTarget, Snapshot
from ambiance.devices.lights.virtual import VirtualLight, VirtualLights
from ambiance.errors import DeviceUnavailable
from ambiance.infra.clock import FakeClock
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

    def _check(self, call: str) -> None:
        self.calls.append(call)
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
        "bedroom", "lights", backend, bus, FakeClock(), retry_initial=0.01, retry_max=0.05
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
    coordinator: LightsCoordinator = Coordinator(
        "bedroom", "lights", backend, bus, FakeClock(), poll_interval=0.05
    )
    await coordinator.start()
    try:
        assert await coordinator.wait_synced(5)
        for bri in (10, 90):  # twice: the poll is armed again after each one
            mark = len(log.events)
            backend.lights[1].on, backend.lights[1].bri = True, bri
            await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
            assert (
                coordinator.state is not None and coordinator.state[1] == backend.lights[1].state()
            )
        # Changes asked meanwhile are applied as ever, and the polls go on after them.
        coordinator.show(WARM)
        assert await coordinator.wait_synced(5)
        mark = len(log.events)
        backend.lights[0].bri = 3
        await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
        assert coordinator.state is not None and coordinator.state[0] == backend.lights[0].state()
    finally:
        await coordinator.stop()


async def test_a_failure_while_polling_backs_off_then_recovers() -> None:
    backend = FlakyLights()
    bus = EventBus()
    log = EventLog(bus)
    coordinator: LightsCoordinator = Coordinator(
        "bedroom",
        "lights",
        backend,
        bus,
        FakeClock(),
        retry_initial=0.01,
        retry_max=0.05,
        poll_interval=0.02,
    )
    await coordinator.start()
    try:
        assert await coordinator.wait_synced(5)
        backend.down = True  # the next poll fails
        await log.wait_for(lambda e: e.kind == "device.health" and not e.data["available"])
        backend.down = False
        await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
        mark = len(log.events)
        backend.lights[0].bri = 7  # and polling goes on
        await log.wait_for(lambda e: e.kind == "lights.changed", start=mark)
    finally:
        await coordinator.stop()
