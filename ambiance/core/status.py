"""The one status vocabulary: a session's status, and a room's (idle or its session's)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal


class Status(StrEnum):
    """Where a session is; the store, the engine, the API and MQTT all use these values."""

    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        return self in ACTIVE


ACTIVE: Final = (Status.RUNNING, Status.PAUSED)
ENDED: Final = (Status.FINISHED, Status.STOPPED)


class RoomStatus(StrEnum):
    """A room is idle, or as its session is."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"


# How a room, a device or the service is: everything answered, or something did not.
HealthStatus = Literal["ok", "degraded"]
