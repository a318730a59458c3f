"""Test helpers: a small routine and library built in code, and waiting for events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ambiance.core.events import Event, EventBus
from ambiance.core.scenes import Guidance, Library, LightsSpec, Routine, Scene, Stage


def make_library() -> Library:
    """Three scenes and a four-stage routine `quick`: prepare (untimed), a 60 s, b 120 s, c 30 s."""
    scenes = {
        "warm": Scene(name="warm", lights=LightsSpec(kelvin=2700, brightness=40, transition=1)),
        "dim": Scene(name="dim", lights=LightsSpec(kelvin=2200, brightness=20, transition=2)),
        "dark": Scene(name="dark", lights=LightsSpec(kelvin=2000, brightness=5, transition=3)),
    }
    guidance = Guidance(summary="do this")
    stages = [
        Stage(name="prepare", scene="warm", duration=None, guidance=guidance),
        Stage(name="a", scene="dim", duration=60, guidance=guidance),
        Stage(name="b", scene="dark", duration=120, guidance=guidance),
        Stage(name="c", scene="warm", duration=30, guidance=guidance),
    ]
    timed = [s for s in stages if s.timed]
    routines = {
        "quick": Routine(name="quick", stages=stages, restore_transition=1),
        "timed": Routine(name="timed", stages=timed, restore_transition=1),
    }
    return Library(scenes=scenes, routines=routines)


class EventLog:
    """Collects a bus's events and lets a test wait for one, with a timeout."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self.unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 5.0, start: int = 0
    ) -> Event:
        async def scan() -> Event:
            index = start
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)
