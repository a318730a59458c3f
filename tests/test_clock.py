"""The one clock: a fake one that sleeps and waits only as far as a test moves it, and the
real one, whose wait is a timeout on the waiting task (no task of its own)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ambiance.infra.clock import FakeClock, SystemClock

pytestmark = pytest.mark.anyio


async def test_a_fake_sleep_ends_when_the_clock_is_moved_past_it() -> None:
    clock = FakeClock(monotonic="fake")
    began = clock.monotonic()
    sleeper = asyncio.create_task(clock.sleep(5))
    await clock.run(4.9)
    assert not sleeper.done()
    await clock.run(0.1)
    assert sleeper.done() and sleeper.exception() is None
    assert clock.monotonic() - began == pytest.approx(5)
    assert clock.pending == 0


async def test_a_fake_wait_is_true_when_set_and_false_once_its_time_is_up() -> None:
    clock = FakeClock(monotonic="fake")
    event = asyncio.Event()
    waiter = asyncio.create_task(clock.wait(event, 10))
    await clock.run(3)
    event.set()
    await clock.run(0)
    assert waiter.done() and waiter.result() is True
    assert clock.pending == 0  # its timeout went with it

    event.clear()
    waiter = asyncio.create_task(clock.wait(event, 10))
    await clock.run(9.9)
    assert not waiter.done()
    await clock.run(0.1)
    assert waiter.done() and waiter.result() is False


async def test_run_lets_each_woken_task_set_its_next_timer() -> None:
    clock = FakeClock(monotonic="fake")
    ticks: list[float] = []

    async def ticking() -> None:
        for _ in range(10):
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    start = clock.monotonic()
    task = asyncio.create_task(ticking())
    await clock.run(9.5)
    assert [t - start for t in ticks] == pytest.approx(list(range(1, 10)))
    await clock.run(0.5)
    assert task.done() and len(ticks) == 10


async def test_a_cancelled_fake_sleep_leaves_no_timer() -> None:
    clock = FakeClock(monotonic="fake")
    sleeper = asyncio.create_task(clock.sleep(5))
    await clock.run(1)
    assert clock.pending == 1
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert clock.pending == 0
    await clock.run(10)  # nothing left to fire


async def test_a_fake_clock_keeps_the_loops_monotonic_time_by_default() -> None:
    # For tests against real devices on loopback: only deadlines (wall time) are fake.
    clock = FakeClock()
    wall, mono = clock.now(), clock.monotonic()
    clock.advance(3600)
    assert clock.now() == wall + 3600
    assert clock.monotonic() - mono < 1.0
    fired = asyncio.Event()
    clock.call_later(0, fired.set)
    assert clock.pending == 0  # on the loop, not on the fake timeline
    assert await clock.wait(fired, 5)


async def test_the_real_wait_makes_no_task_of_its_own() -> None:
    clock = SystemClock()
    event = asyncio.Event()
    tasks = len(asyncio.all_tasks())
    waiter = asyncio.create_task(clock.wait(event, 5))
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks + 1  # only the waiter itself
    event.set()
    assert await waiter is True

    event.clear()
    began = time.monotonic()
    assert await clock.wait(event, 0.01) is False
    assert time.monotonic() - began < 1.0
