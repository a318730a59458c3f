"""What a door needs of the service: the rooms, the event bus, the clock, where data lives.

The doors (MQTT, Home Assistant discovery) depend on this Protocol rather than on the
service object that builds them, so the service can import them without a cycle.
`Ambiance` (service.py) meets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from ambiance.core.events import EventBus
from ambiance.core.room import Room
from ambiance.infra.clock import Clock


class Core(Protocol):
    @property
    def rooms(self) -> Mapping[str, Room]: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def data_dir(self) -> Path:
        """Where the service keeps its files (a door may keep a record there)."""
        ...

    @property
    def version(self) -> str:
        """The running ambiance's version (`ambiance.__version__`)."""
        ...

    def room(self, name: str) -> Room:
        """The room by name; NotFound (naming the known ones) if there is none."""
        ...
