"""The room's contract: typed views of a room, its session and its devices.

Declared once, here. The REST API answers these models, the retained MQTT state message
is `StateMessage`, and the server-sent events carry `RoomView` frames: every door
serialises the same objects, so they cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.core.scenes import Guidance, Position, Step
from ambiance.core.status import HealthStatus, RoomStatus, Status

if TYPE_CHECKING:
    from ambiance.infra.store import SessionRecord


class View(BaseModel):
    """A view is read, not sent in: it forbids nothing and validates what it is given."""

    model_config = ConfigDict(frozen=True)


class DeviceHealth(View):
    device: str
    kind: str
    available: bool
    error: str | None
    since: float | None


class GuidanceView(View):
    """A stage's guidance as shown: `steps` are the texts (what a screen or a speaker
    says), `step_details` the same steps with their areas, pressure and technique."""

    summary: str
    steps: list[str]
    step_details: list[Step]
    pressure: str | None
    caution: str | None

    @classmethod
    def of(cls, guidance: Guidance) -> GuidanceView:
        return cls(
            summary=guidance.summary,
            steps=guidance.texts,
            step_details=list(guidance.steps),
            pressure=guidance.pressure,
            caution=guidance.caution,
        )


class StageView(View):
    index: int
    name: str
    title: str
    scene: str
    timed: bool
    duration: float | None = Field(description="Seconds; null when untimed.")
    tempo: int | None = Field(description="Strokes per minute, to pace the hands.")
    started_at: float = Field(description="Epoch seconds.")
    remaining: float | None = Field(description="Seconds left; null when untimed.")
    position: Position = Field(description="How the receiver lies or sits.")
    guidance: GuidanceView


class SessionView(View):
    id: str
    routine: str
    profile: str | None
    status: Status
    started_at: float
    ended_at: float | None
    stage: StageView
    total_remaining: float | None = Field(description="Seconds; untimed stages count 0.")
    stages: list[str]


class LightView(View):
    id: str
    name: str
    on: bool
    brightness: float | None = Field(description="Percent.")
    kelvin: int | None
    reachable: bool


class DesiredLights(View):
    on: bool
    brightness: float
    kelvin: int | None
    transition: float


class LightsView(View):
    backend: str
    synced: bool = Field(description="The lights match what was asked.")
    restoring: bool
    desired: DesiredLights | None
    lights: list[LightView]
    health: DeviceHealth


class PhoneView(View):
    name: str
    mode: str
    dnd: bool = Field(description="Asked to be on do-not-disturb now.")
    until: str | None


class DistractionView(View):
    name: str
    kind: str
    on: bool | None = Field(description="null: the device has not said.")


class DistractionsView(View):
    synced: bool
    off: bool = Field(description="Asked to be switched off now.")
    devices: list[DistractionView]


class MusicWanted(View):
    playlist: str | None
    tracks: list[str]
    volume: float
    fade: float
    crossfade: float
    stop: bool
    tempo: int | None
    stage: str | None
    cue: int


class PlayerView(View):
    state: Literal["play", "pause", "stop", "unknown"]
    volume: float | None
    playlist: str | None
    song: str | None
    elapsed: float | None


class MusicView(View):
    backend: str
    synced: bool
    desired: MusicWanted | None
    player: PlayerView | None


class RoomHealth(View):
    status: HealthStatus
    devices: list[DeviceHealth]


class RoomView(View):
    name: str
    title: str
    routine: str = Field(description="The routine spa mode runs by default.")
    session: SessionView | None
    last_session: SessionView | None
    scene: str | None
    lights: LightsView
    phones: list[PhoneView]
    distractions: DistractionsView | None
    music: MusicView | None
    health: RoomHealth

    def summary(self) -> RoomSummary:
        session = self.session
        return RoomSummary(
            name=self.name,
            title=self.title,
            routine=self.routine,
            status=RoomStatus.IDLE if session is None else RoomStatus(session.status),
            stage=None if session is None else session.stage.name,
            health=self.health.status,
        )


class RoomSummary(View):
    name: str
    title: str
    routine: str
    status: RoomStatus
    stage: str | None
    health: HealthStatus


class StateMessage(View):
    """The room's state in brief: retained on `<base>/<room>/state`, read by Home Assistant."""

    room: str
    status: RoomStatus
    session: str | None
    routine: str | None
    profile: str | None
    stage: str | None
    stage_title: str | None
    stage_index: int | None
    stage_remaining: float | None = Field(description="Seconds, to a tenth.")
    stage_ends_at: str | None = Field(description="ISO 8601, UTC.")
    total_remaining: float | None
    ends_at: str | None
    scene: str | None
    dnd: bool
    health: HealthStatus
    at: str


class Health(View):
    """The service's health: every room's, and the version."""

    status: HealthStatus
    version: str
    rooms: dict[str, HealthStatus]


class SessionSummary(View):
    """A session as the history shows it (live ones as they are now)."""

    id: str
    room: str
    routine: str
    profile: str | None
    status: Status
    stage: str = Field(description="The stage it is in, or ended in.")
    started_at: float
    ended_at: float | None

    @classmethod
    def of(cls, record: SessionRecord) -> SessionSummary:
        return cls(
            id=record.id,
            room=record.room,
            routine=record.routine,
            profile=record.profile,
            status=Status(record.status),
            stage=stage_name(record.routine_data, record.index),
            started_at=record.started_at,
            ended_at=record.ended_at,
        )


class SessionDetail(SessionSummary):
    commands: list[dict[str, object]]
    feedback: list[dict[str, object]]


def stage_name(routine_data: dict[str, Any], index: int) -> str:
    """The name of stage `index` in a stored routine (as `Session.record()` writes it)."""
    stages = routine_data["routine"]["stages"]
    return str(stages[index]["name"])
