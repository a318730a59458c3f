"""Request and response bodies, with examples for the OpenAPI page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.core.profiles import Profile
from ambiance.core.scenes import NAME_PATTERN, Guidance


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ---------------------------------------------------------------------------


class SpaRequest(_Body):
    routine: str | None = Field(
        default=None,
        description="Routine to run; the room's default if left out.",
        examples=["classic"],
    )
    profile: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Whom the massage is for.",
        examples=["sam"],
    )


class GotoRequest(_Body):
    stage: str = Field(examples=["petrissage"])


class ExtendRequest(_Body):
    seconds: float = Field(default=60, gt=0, le=3600, examples=[120])


class StageRequest(_Body):
    stage: str = Field(examples=["friction"])
    remaining: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="Seconds left in the stage, by the other app's timer; "
        "left out: the stage's full duration.",
        examples=[90],
    )


class SceneRequest(_Body):
    scene: str = Field(examples=["rest"])


Action = Literal["pause", "resume", "next", "previous", "stop"]

# --- responses --------------------------------------------------------------------------


class StageView(BaseModel):
    index: int
    name: str
    title: str
    scene: str
    timed: bool
    duration: float | None = Field(description="Seconds; null when untimed.")
    tempo: int | None = Field(description="Strokes per minute, to pace the hands.")
    started_at: float = Field(description="Epoch seconds.")
    remaining: float | None = Field(description="Seconds left; null when untimed.")
    guidance: Guidance


class SessionView(BaseModel):
    id: str
    routine: str
    profile: str | None
    status: Literal["running", "paused", "finished", "stopped"]
    started_at: float
    ended_at: float | None
    stage: StageView
    total_remaining: float | None = Field(description="Seconds; untimed stages count 0.")
    stages: list[str]


class LightView(BaseModel):
    id: str
    name: str
    on: bool
    brightness: float | None = Field(description="Percent.")
    kelvin: int | None
    reachable: bool


class DesiredLights(BaseModel):
    on: bool
    brightness: float
    kelvin: int | None
    transition: float


class DeviceHealth(BaseModel):
    device: str
    kind: str
    available: bool
    error: str | None
    since: float | None


class LightsView(BaseModel):
    backend: str
    synced: bool = Field(description="The lights match what was asked.")
    restoring: bool
    desired: DesiredLights | None
    lights: list[LightView]
    health: DeviceHealth


class PhoneView(BaseModel):
    name: str
    mode: str
    dnd: bool = Field(description="Asked to be on do-not-disturb now.")
    until: str | None


class DistractionView(BaseModel):
    name: str
    kind: str
    on: bool | None = Field(description="null: the device has not said.")


class DistractionsView(BaseModel):
    synced: bool
    off: bool = Field(description="Asked to be switched off now.")
    devices: list[DistractionView]


class MusicWanted(BaseModel):
    playlist: str | None
    tracks: list[str]
    volume: float
    fade: float
    crossfade: float
    stop: bool
    tempo: int | None
    stage: str | None
    cue: int


class PlayerView(BaseModel):
    state: Literal["play", "pause", "stop", "unknown"]
    volume: float | None
    playlist: str | None
    song: str | None
    elapsed: float | None


class MusicView(BaseModel):
    backend: str
    synced: bool
    desired: MusicWanted | None
    player: PlayerView | None


class RoomHealth(BaseModel):
    status: Literal["ok", "degraded"]
    devices: list[DeviceHealth]


class RoomView(BaseModel):
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


class RoomSummary(BaseModel):
    name: str
    title: str
    routine: str
    status: Literal["idle", "running", "paused"]
    stage: str | None
    health: Literal["ok", "degraded"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    rooms: dict[str, Literal["ok", "degraded"]]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["room_not_found"])
    message: str = Field(examples=["no room named 'kitchen' (known: bedroom)"])
    detail: object | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "The body cannot be read (not UTF-8 JSON)."},
    404: {"model": ErrorBody, "description": "No such room, scene, routine or stage."},
    409: {"model": ErrorBody, "description": "The command does not fit the room's state."},
    422: {"model": ErrorBody, "description": "A value is missing or out of range."},
}


# --- profiles and sessions ---------------------------------------------------------------


class ProfileChanges(BaseModel):
    """Any fields of a profile, to change just those."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = None
    pressure: Literal["soft", "medium", "firm"] | None = None
    focus: list[str] | None = None
    avoid: list[str] | None = None
    warmth: Literal["warmer", "as_scene", "cooler"] | None = None
    brightness: Literal["dimmer", "as_scene", "brighter"] | None = None
    music: str | None = None
    oil: str | None = None
    scent: str | None = None
    notes: str | None = None
    stage_minutes: dict[str, float] | None = None
    stage_pressure: dict[str, Literal["soft", "medium", "firm"]] | None = None
    favourite_stage: str | None = None


class ProfileExport(BaseModel):
    format: Literal["ambiance.profile/1"]
    profile: Profile
    feedback: list[dict[str, object]] = Field(default_factory=list)


class SessionSummary(BaseModel):
    id: str
    room: str
    routine: str
    profile: str | None
    status: Literal["running", "paused", "finished", "stopped"]
    stage: str = Field(description="The stage it is in, or ended in.")
    started_at: float
    ended_at: float | None


class SessionDetail(SessionSummary):
    commands: list[dict[str, object]]
    feedback: list[dict[str, object]]


class FeedbackResult(BaseModel):
    session: str
    profile: Profile | None = Field(description="The profile as it learned, if any.")
