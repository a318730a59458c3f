"""The room's contract: typed views of a room, its session and its devices.

Declared once, here. The REST API answers these models, the retained MQTT state message
is `StateMessage`, and the server-sent events carry `RoomView` frames: every door
serialises the same objects, so they cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.core.checkins import Answer, Kind
from ambiance.core.scenes import Guidance, Position, Pressure, Step
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
    pressure_now: Pressure | None = Field(
        default=None,
        description="The stage's pressure as check-in answers left it (within every cap); "
        "null where hands are not at work.",
    )


class CheckinView(View):
    """The pressure check-in of the stage now: open (`answered` null) until answered, and
    gone when the stage ends. What a phone or a speaker says aloud is `prompt`."""

    id: str = Field(description="Give it with the answer to be sure it is this one.")
    stage: str
    kind: Kind = Field(description="first strokes, a change of technique, a tight spot, ...")
    prompt: str = Field(description="What to ask the receiver, aloud.")
    guidance: str = Field(description="For the giver: the scale, and what to watch for.")
    asked_at: float = Field(description="Epoch seconds.")
    answered: Answer | None = Field(description="Null while open.")
    answered_at: float | None = None
    now: str | None = Field(
        default=None,
        description="Once answered: what to do now (the stage's pressure line begins with it).",
    )


class PlannedCheckin(View):
    """A check-in in the session's timeline."""

    id: str
    stage: str
    at: float = Field(description="Seconds into its stage (the time the stage has run).")
    kind: Kind
    prompt: str
    answer: Answer | None = Field(description="Its answer, once given.")


class FeedbackGiven(View):
    """The one feedback a session took: when, and whose (its profile)."""

    id: int = Field(description="The feedback's id (in the session's detail).")
    at: float = Field(description="Epoch seconds.")
    by: str | None = Field(description="The profile it was for; null without one.")


class AreaView(View):
    """A body area (core/areas.py), for a client that lets people pick it by name."""

    id: str = Field(description="What the API takes (as it takes the plain name).")
    name: str = Field(description="Plain words: `back of the neck`.")
    caution: bool = Field(description="An area of caution: only ever kept off, never worked.")
    why: str = Field(description="For an area of caution: what lies there.")


class DayQuestion(View):
    """One of today's questions, as a phone or a speaker asks it."""

    id: str = Field(description="The answer's field in the `today` command's body.")
    text: str = Field(description="The question in plain words.")
    where: bool = Field(
        description="Answered with the body areas (ids or plain names), or true/false."
    )


class TodayView(View):
    """Today's questions (a fever, painkillers or alcohol, anything sore, a swollen calf):
    whether they are asked now, and whether they were answered. Never the answers: what
    they changed is in the stages' guidance."""

    asking: bool = Field(
        description="Getting ready, before the massage: the `today` command answers them now."
    )
    answered: bool = Field(description="They were answered, at the start or while getting ready.")
    questions: list[DayQuestion] = Field(description="What is asked (empty when not asking).")


class SessionView(View):
    id: str
    routine: str
    profile: str | None
    status: Status
    started_at: float
    ended_at: float | None
    stage: StageView
    total_remaining: float | None = Field(description="Seconds; untimed stages count 0.")
    total_duration: float = Field(description="Seconds of all the timed stages together.")
    minutes: float | None = Field(
        description="The length in minutes the routine was fitted to; null: its own."
    )
    durations: list[float | None] = Field(
        description="Each stage's length in seconds (as fitted), in the order of `stages`; "
        "null when untimed."
    )
    stages: list[str]
    reached: list[str] = Field(
        default_factory=list,
        description="The stages it got to, in order: the ones feedback asks about.",
    )
    follows: str | None = Field(default=None, description="The session it took turns after.")
    followed_by: str | None = Field(default=None, description="The turn that came after it.")
    today: TodayView | None = Field(default=None, description="Today's questions.")
    end_reason: str | None = Field(
        default=None,
        description="Why it ended (stop, next, timer, ...); `not_today`: a stop sign among "
        "today's answers ended it before the massage began (`room_only` is the room without it).",
    )
    feedback_given: FeedbackGiven | None = Field(
        default=None, description="Its feedback, once given (from any phone)."
    )
    checkin: CheckinView | None = Field(
        default=None, description="The pressure check-in of this stage, asked now."
    )
    checkins: list[PlannedCheckin] = Field(
        default_factory=list, description="Every pressure check-in of the session, in order."
    )


class StageLength(View):
    name: str
    title: str
    duration: float | None = Field(description="Seconds; null when untimed.")


class RoutineFit(View):
    """A routine fitted to a length: what lengths it can take, and each stage's."""

    routine: str
    minutes: float | None = Field(description="The length asked for; null: the routine's own.")
    shortest: float = Field(description="Minutes, to a tenth: the shortest it can be fitted to.")
    longest: float = Field(description="Minutes, to a tenth: the longest it can be fitted to.")
    own: float = Field(description="Minutes, to a tenth: the routine's own length.")
    total: float = Field(description="Minutes, to a tenth: the stages below together.")
    stages: list[StageLength]


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
    on: bool | None = Field(
        description="As the device says now; null: unknown (it has not said, or cannot be "
        "read now)."
    )


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
    checkin: CheckinView | None = Field(
        default=None, description="The pressure check-in asked now, for a speaker to say."
    )


class Health(View):
    """The service's health: every room's, the store's, and the version."""

    status: HealthStatus
    version: str
    rooms: dict[str, HealthStatus]
    store: DeviceHealth = Field(
        description="The database in the data dir: unavailable while what is changed "
        "cannot be saved (a full or read-only disk, a damaged database), with the reason."
    )


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
    reached: list[str] = Field(description="The stages it got to, in order.")
    follows: str | None = Field(description="The session it took turns after.")
    followed_by: str | None = Field(description="The session that took turns after it.")

    @classmethod
    def of(cls, record: SessionRecord, followed_by: str | None = None) -> SessionSummary:
        stages = [str(stage["name"]) for stage in record.routine_data["routine"]["stages"]]
        return cls(
            id=record.id,
            room=record.room,
            routine=record.routine,
            profile=record.profile,
            status=Status(record.status),
            stage=stage_name(record.routine_data, record.index),
            started_at=record.started_at,
            ended_at=record.ended_at,
            reached=stages_reached(stages, record.index, record.reached),
            follows=record.follows,
            followed_by=followed_by,
        )


class SessionDetail(SessionSummary):
    commands: list[dict[str, object]]
    feedback: list[dict[str, object]]
    feedback_given: FeedbackGiven | None = Field(
        description="Its one feedback, if given: a second is refused (409)."
    )


def stage_name(routine_data: dict[str, Any], index: int) -> str:
    """The name of stage `index` in a stored routine (as `Session.record()` writes it)."""
    stages = routine_data["routine"]["stages"]
    return str(stages[index]["name"])


def stages_reached(stages: list[str], index: int, reached: list[str] | None) -> list[str]:
    """The stages a session got to. One stored before they were recorded (`reached` is
    None, schema v4 and older) is taken to have walked `stages` in order up to stage
    `index`, the one it is or ended in."""
    if reached is not None:
        return list(reached)
    return stages[: index + 1]
