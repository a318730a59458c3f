"""Start-up's objects are frozen out of the collector's full passes; its garbage is not."""

from __future__ import annotations

import gc
import weakref

from ambiance.infra.memory import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_freeze_keeps_what_lives_and_collects_what_is_garbage() -> None:
    kept = Node()
    cycle = Node()
    cycle.other = Node()
    cycle.other.other = cycle  # only a collection frees a cycle
    gone = weakref.ref(cycle)
    del cycle
    try:
        freeze_startup_objects()
        assert gone() is None  # collected before the freeze, not kept for good
        tracked = {id(o) for o in gc.get_objects()}
        assert id(kept) not in tracked  # frozen: full passes leave it out
        later = Node()
        assert id(later) in {id(o) for o in gc.get_objects()}  # made since: walked as ever
    finally:
        gc.unfreeze()
