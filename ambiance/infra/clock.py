"""The one clock: wall-clock time and deadlines, monotonic time, timers, sleeps and waits.

Everything time-based goes through a `Clock`, so a test can fake it. Two timelines:
wall-clock epoch seconds (`now`, `call_at`) for deadlines a session stores and picks up
again after a restart, and monotonic seconds (`monotonic`, `call_later`, `sleep`,
`wait`) for spans: a device's backoff and poll, a bridge's command spacing, a bounded
wait for a device to answer. `SystemClock` rides on the running event loop.

`FakeClock` moves only when told (`advance`, `run`). Its wall side is always fake. Its
monotonic side is either the loop's (the default, for tests that talk to real devices on
loopback, whose pace is real: a bridge's rate limit, an outage, a fade) or fake as well
(`FakeClock(monotonic="fake")`: one timeline, so a test drives a coordinator's backoff
and poll, or a bridge's spacing, without real waiting).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Return the wall-clock time in epoch seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop once the wall clock reaches `when`."""
        ...

    def monotonic(self) -> float:
        """Return monotonic seconds, for spans (never for deadlines that are stored)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop `delay` monotonic seconds from now."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for `event` at most `timeout` seconds; True if it was set."""
        ...


class SystemClock:
    """The real clock; timers ride on the running event loop."""

    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self.call_later(when - time.time(), callback)

    def monotonic(self) -> float:
        return time.monotonic()  # the event loop's own time

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        # asyncio.timeout, not wait_for: wait_for (3.11) runs the wait in a task of its
        # own, and the hops between the two tasks put a tap's device change behind
        # everything else the tap queued on the loop (state messages, the store). With a
        # thousand rooms, a task per wait is also what the loop would spend its time on.
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await event.wait()
        except TimeoutError:
            return False
        return True


async def wait_until(
    clock: Clock, done: Callable[[], bool], changed: asyncio.Event, timeout: float
) -> bool:
    """Wait until `done()` holds, checking again each time `changed` is set; False when
    `timeout` seconds of `clock` passed first. `changed` is cleared as it is used."""
    deadline = clock.monotonic() + timeout
    while not done():
        changed.clear()
        left = deadline - clock.monotonic()
        if left <= 0 or not await clock.wait(changed, left):
            return done()
    return True


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():  # a cancelled sleep or wait leaves its future cancelled
        future.set_result(None)


class _FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told; `advance()` fires due timers in order.

    `monotonic="loop"` (the default): only the wall clock is fake; monotonic time,
    `call_later`, `sleep` and `wait` are the running loop's, as with `SystemClock`.
    `monotonic="fake"`: they are on the fake timeline too (monotonic == wall time), so
    sleeps and waits end only when the clock is advanced past them; `await run(s)` then
    lets the woken tasks run, and the timers they set, within `s` seconds.
    """

    # Turns of the loop `run()` gives woken tasks to reach their next wait: a wake-up
    # takes a few hops (timer, future, task); tasks that wait on real I/O are not waited
    # for (wait for their event instead).
    SETTLE_TURNS = 20

    def __init__(
        self, start: float = 1_800_000_000.0, *, monotonic: Literal["loop", "fake"] = "loop"
    ) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._loop = SystemClock() if monotonic == "loop" else None

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer()
        heapq.heappush(self._timers, (when, next(self._seq), timer, callback))
        return timer

    def monotonic(self) -> float:
        return self._now if self._loop is None else self._loop.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        if self._loop is not None:
            return self._loop.call_later(delay, callback)
        return self.call_at(self._now + max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        if self._loop is not None:
            return await self._loop.sleep(seconds)
        if seconds <= 0:
            return await asyncio.sleep(0)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, functools.partial(_resolve, done))
        try:
            await done
        finally:
            timer.cancel()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if self._loop is not None:
            return await self._loop.wait(event, timeout)
        if event.is_set():
            return True
        if timeout <= 0:
            await asyncio.sleep(0)
            return event.is_set()
        # A task per wait is fine here: a fake clock is for tests, not a thousand rooms.
        waiter: asyncio.Future[object] = asyncio.ensure_future(event.wait())
        expired: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        timer = self.call_later(timeout, functools.partial(_resolve, expired))
        try:
            await asyncio.wait({waiter, expired}, return_when=asyncio.FIRST_COMPLETED)
            return waiter.done() and not waiter.cancelled()
        finally:
            timer.cancel()
            waiter.cancel()
            expired.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, each at its own time."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            callback()
        self._now = target

    async def run(self, seconds: float) -> None:
        """Advance by `seconds` one due timer at a time, letting the tasks each wakes run
        (and fire, in turn, the timers they set that fall due within `seconds`)."""
        target = self._now + seconds
        await self._settle()
        while (due := self._next_due()) is not None and due <= target:
            self.advance(due - self._now)
            await self._settle()
        self.advance(target - self._now)

    def _next_due(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def _settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    @property
    def pending(self) -> int:
        """Count timers not yet fired or cancelled."""
        return sum(1 for _, _, t, _ in self._timers if not t.cancelled)
