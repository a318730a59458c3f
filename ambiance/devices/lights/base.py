"""The protocol every light backend speaks, and the unit conversions they share.

A scene speaks in people's units (kelvin, percent, seconds); Hue and Zigbee speak in
device units (mireds, bri 1-254, deciseconds). The conversions live here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Hue's ct range across all its bulbs; each light reports its own narrower range.
MIRED_MIN = 153  # 6500 K
MIRED_MAX = 500  # 2000 K
BRI_MAX = 254
TRANSITION_MAX = 65535  # transitiontime is a uint16 of 100 ms steps


@dataclass(frozen=True)
class LightTarget:
    """What a scene asks of all the lights of a room: one group command."""

    on: bool
    brightness: float = 100.0  # percent, 0-100; ignored when off
    kelvin: int | None = None  # None: leave the colour as it is
    transition: float = 0.4  # seconds


@dataclass(frozen=True)
class LightState:
    """One light as it is now, in people's units (for the API and the page)."""

    id: str
    name: str
    on: bool
    brightness: float | None  # percent
    kelvin: int | None
    reachable: bool = True


@dataclass(frozen=True)
class SavedLight:
    """One light's exact state in the backend's own units, for an exact restore."""

    id: str
    name: str
    state: Mapping[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """The lights of a room as they were before spa mode."""

    lights: tuple[SavedLight, ...] = field(default_factory=tuple)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"id": x.id, "name": x.name, "state": dict(x.state)} for x in self.lights]

    @classmethod
    def from_json(cls, data: Any) -> Snapshot:
        return cls(tuple(SavedLight(str(x["id"]), str(x["name"]), dict(x["state"])) for x in data))


class LightsBackend(Protocol):
    """The lights of one room. One object per room; it alone talks to those devices."""

    kind: str

    async def start(self) -> None:
        """Connect and resolve what the config names (group, lights)."""
        ...

    async def stop(self) -> None: ...

    async def read(self) -> list[LightState]:
        """Return every light of the room as it is now."""
        ...

    async def apply(self, target: LightTarget) -> None:
        """Bring all the room's lights to `target` in one group command."""
        ...

    async def snapshot(self) -> Snapshot:
        """Record each light's exact state."""
        ...

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        """Put each light back exactly as `snapshot` has it, fading over `transition` s."""
        ...

    def dump_snapshot(self, snapshot: Snapshot) -> Any:
        """The snapshot as JSON, for the store."""
        ...

    def load_snapshot(self, data: Any) -> Snapshot: ...


class SnapshotsAsJson:
    """The snapshot codec every lights backend shares: a `Snapshot` to JSON and back."""

    def dump_snapshot(self, snapshot: Snapshot) -> Any:
        return snapshot.to_json()

    def load_snapshot(self, data: Any) -> Snapshot:
        return Snapshot.from_json(data)


def kelvin_to_mired(kelvin: float, low: int = MIRED_MIN, high: int = MIRED_MAX) -> int:
    """Convert a colour temperature to mireds, clamped to a light's range [low, high]."""
    return max(low, min(high, round(1_000_000 / kelvin)))


def mired_to_kelvin(mired: float) -> int:
    return round(1_000_000 / mired)


def percent_to_bri(percent: float) -> int:
    """Map 0-100 % to Hue's bri 1-254 (bri 1 is the dimmest on, not off)."""
    return max(1, min(BRI_MAX, round(percent * BRI_MAX / 100)))


def bri_to_percent(bri: int) -> float:
    return round(bri * 100 / BRI_MAX, 1)


def seconds_to_transitiontime(seconds: float) -> int:
    """Convert seconds to Hue's transitiontime (100 ms steps, a uint16)."""
    return max(0, min(TRANSITION_MAX, round(seconds * 10)))
