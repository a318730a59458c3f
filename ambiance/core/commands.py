"""The command table: every command a room takes, declared once for every door.

Each command has a name, its arguments as a pydantic model, a one-line doc, how it runs on
a Room, and how each door shows it: its REST routes (method and path under
`/rooms/{room}`), whether MQTT takes its name as a bare word, and a Home Assistant button.
The doors build their routes, parsers and entities from this table, so a command added
here, or with `register()`, appears in every door: the HTTP API when its app is created,
MQTT at the next message, Home Assistant at the next discovery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ambiance.core.checkins import Answer
from ambiance.core.fitting import MAX_MINUTES, MIN_MINUTES
from ambiance.core.profiles import DayCheck, Where
from ambiance.core.room import Room
from ambiance.core.scenes import NAME_PATTERN
from ambiance.core.status import Status

# The one REST operation shared by the commands that take no arguments: the command's
# name fills `{action}` (POST /rooms/{room}/session/next).
SESSION_PATH = "/session/{action}"


class Arguments(BaseModel):
    """A command's arguments; an unknown field is an error (a typo must not go unnoticed)."""

    model_config = ConfigDict(extra="forbid")


class NoArguments(Arguments):
    pass


# The models keep the names they have in the OpenAPI document (`SpaRequest`, ...).


class SpaRequest(Arguments):
    routine: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Routine to run; the room's default if left out.",
        examples=["classic"],
    )
    profile: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Whom the massage is for.",
        examples=["sam"],
    )
    follows: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Taking turns: the ended session of the other person this one comes "
        "after (its id). It must have ended, been for another profile, and not been "
        "followed yet.",
        examples=["3f2a9c0e5b7d4e21a8c6f0b1d2e3f4a5"],
    )
    minutes: float | None = Field(
        default=None,
        ge=MIN_MINUTES,
        le=MAX_MINUTES,
        allow_inf_nan=False,
        strict=True,  # a number: neither `true` nor "20"
        description="Fit the routine to this many minutes (its timed stages), keeping its "
        "shape; left out: its own length. A length the routine cannot take is a 422 "
        "naming the shortest and longest possible (GET /routines/{name}/fit).",
        examples=[20],
    )
    today: DayCheck | None = Field(
        default=None,
        description="Today's answers, asked while getting ready. A stop sign (a fever or "
        "feeling unwell, a swollen, warm and painful calf) refuses the massage (409 "
        "`no_massage_today`); the room without it is `room_only`.",
        examples=[{"painkillers_or_alcohol": True, "sore": ["neck"]}],
    )
    room_only: bool = Field(
        default=False,
        description="The relaxing room without a massage (the `quiet-room` routine).",
    )


class TodayRequest(Arguments, DayCheck):
    """Today's answers, each optional: the `DayCheck` of spa mode's `today`, sent while
    getting ready."""

    # Two of them again, only to give them examples (the docs' and the OpenAPI's).
    painkillers_or_alcohol: StrictBool | None = Field(
        default=None,
        description=DayCheck.model_fields["painkillers_or_alcohol"].description,
        examples=[True],
    )
    sore: Where | None = Field(
        default=None, description=DayCheck.model_fields["sore"].description, examples=[["neck"]]
    )

    def answers(self) -> DayCheck:
        """The answers alone (an MQTT message carries its `action` and `id` too)."""
        return DayCheck.model_validate(self.model_dump(include=set(DayCheck.model_fields)))


class GotoRequest(Arguments):
    stage: str = Field(pattern=NAME_PATTERN, examples=["petrissage"])


class ExtendRequest(Arguments):
    seconds: float = Field(default=60, gt=0, le=3600, examples=[120])


class StageRequest(Arguments):
    stage: str = Field(pattern=NAME_PATTERN, examples=["friction"])
    remaining: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="Seconds left in the stage, by the other app's timer; "
        "left out: the stage's full duration.",
        examples=[90],
    )


class SceneRequest(Arguments):
    scene: str = Field(pattern=NAME_PATTERN, examples=["rest"])


class CheckinRequest(Arguments):
    answer: Answer = Field(
        description="What the receiver said: softer, same, firmer, or too_much (ease off "
        "now). It changes the pressure of this stage and the later ones at once.",
        examples=["softer"],
    )
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="The check-in answered (the session's `checkin.id`), to be sure it is "
        "still the open one; left out: whichever is open.",
        examples=["petrissage-1"],
    )


ArgsT = TypeVar("ArgsT", bound=Arguments)


@dataclass(frozen=True)
class Rest:
    """Where the HTTP API serves a command: `method` on `/rooms/{room}<path>`."""

    method: str
    path: str
    summary: str = ""  # the operation's; the shared session route makes its own
    description: str | None = None
    status: int = 200
    optional_body: bool = False  # the arguments' defaults when no body is sent
    operation: str = ""  # the operation's name (in its OpenAPI id); the command's by default


SESSION = Rest("POST", SESSION_PATH)


@dataclass(frozen=True)
class Button:
    """A Home Assistant button that sends the command, with `args` (none by default)."""

    object_id: str
    name: str
    icon: str
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Command(Generic[ArgsT]):
    name: str
    doc: str
    args: type[ArgsT]
    run: Callable[[Room, ArgsT], object]
    rest: tuple[Rest, ...]
    bare: bool = False  # MQTT takes the name alone; always so without arguments
    conflicts: bool = True  # may be refused for the room's state (HTTP 409)
    button: Button | None = None
    buttons: tuple[Button, ...] = ()  # more of them, each with its own arguments

    @property
    def takes_bare_word(self) -> bool:
        return self.bare or not self.args.model_fields

    @property
    def all_buttons(self) -> tuple[Button, ...]:
        return ((self.button,) if self.button is not None else ()) + self.buttons


def _toggle_pause(room: Room, _: NoArguments) -> None:
    if room.session is not None and room.session.status is Status.PAUSED:
        room.resume()
    else:
        room.pause()


# Not annotated: so each command's `run` is checked against its own arguments' model.
_BUILT_IN = (
    Command(
        "start",
        "Spa mode: snapshot the room, then walk the routine from its first stage.",
        SpaRequest,
        lambda room, a: room.start_spa(
            routine=a.routine,
            profile=a.profile,
            minutes=a.minutes,
            follows=a.follows,
            today=a.today,
            room_only=a.room_only,
        ),
        (
            Rest(
                "POST",
                "/spa",
                "Spa mode: one tap starts the session",
                "Snapshots the room, fades the lights to the routine's first scene and "
                "starts walking its stages. The body is optional.",
                status=201,
                optional_body=True,
                operation="start_spa",
            ),
        ),
        bare=True,
    ),
    Command(
        "stop",
        "End the session early; the room goes back as it was.",
        NoArguments,
        lambda room, _: room.stop_session(),
        (
            Rest(
                "DELETE",
                "/spa",
                "End spa mode early; the room goes back as it was",
                operation="stop_spa",
            ),
            SESSION,
        ),
    ),
    Command("pause", "Pause the session's timer.", NoArguments, lambda r, _: r.pause(), (SESSION,)),
    Command("resume", "Go on after a pause.", NoArguments, lambda r, _: r.resume(), (SESSION,)),
    Command(
        "toggle_pause",
        "Pause when running, resume when paused (one button for both).",
        NoArguments,
        _toggle_pause,
        (SESSION,),
        button=Button("pause_resume", "Pause/resume", "mdi:play-pause"),
    ),
    Command(
        "next",
        "Go to the next stage (also 'ready' in an untimed one); the last one finishes.",
        NoArguments,
        lambda r, _: r.next(),
        (SESSION,),
        button=Button("next", "Next", "mdi:skip-next"),
    ),
    Command(
        "previous",
        "Go to the previous stage; in the first one, start it again.",
        NoArguments,
        lambda r, _: r.previous(),
        (SESSION,),
        button=Button("previous", "Previous", "mdi:skip-previous"),
    ),
    Command(
        "today",
        "Answer today's questions while getting ready: the rest of the session is shaped "
        "by them at once; a stop sign ends it before the massage (409 `no_massage_today`).",
        TodayRequest,
        lambda room, a: room.answer_today(a.answers()),
        (
            Rest(
                "POST",
                "/session/today",
                "Answer today's questions (while getting ready)",
                "Fever or feeling unwell, painkillers or alcohol today, anything sore "
                "(where), a calf that is swollen, warm and painful. Asked in the first, "
                "untimed stage, before the massage begins: the session's routine is adapted "
                "with them at once, as if they had come with the start (areas left out, "
                "pressure capped; the guidance says what changed), and answers sent again "
                "replace the last ones. A stop sign ends the session before the massage "
                "(409 `no_massage_today`, the session ended with reason `not_today`); "
                "`room_only` then starts the room without it. After the massage has begun: "
                "409. The answers are kept nowhere.",
                operation="answer_today",
            ),
        ),
    ),
    Command(
        "goto",
        "Go to a named stage.",
        GotoRequest,
        lambda room, a: room.goto(a.stage),
        (Rest("POST", "/session/goto", "Go to a named stage"),),
    ),
    Command(
        "set_stage",
        "Set the stage explicitly: another app leads, and the timer follows.",
        StageRequest,
        lambda room, a: room.set_stage(a.stage, a.remaining),
        (Rest("PUT", "/stage", "Set the stage explicitly (another app leads; the timer follows)"),),
    ),
    Command(
        "extend",
        "Give the current (timed) stage more time.",
        ExtendRequest,
        lambda room, a: room.extend(a.seconds),
        (Rest("POST", "/session/extend", "Give the current stage more time"),),
    ),
    Command(
        "checkin",
        "Answer the open pressure check-in: softer, same, firmer or too_much.",
        CheckinRequest,
        lambda room, a: room.checkin(a.answer, a.id),
        (
            Rest(
                "POST",
                "/session/checkin",
                "Answer the open pressure check-in",
                "The receiver's answer to the check-in the session asks now (its `checkin`). "
                "The pressure line of this stage and the later ones changes at once: one "
                "step softer or firmer, never past a cap of their health or today's "
                "answers; too_much also says to ease off now. Learned for next time at "
                "the session's end. 409 `no_checkin_open` when none is open.",
            ),
        ),
        buttons=tuple(
            Button(f"checkin_{answer}", f"Check-in: {text}", icon, {"answer": answer})
            for answer, text, icon in (
                ("softer", "softer", "mdi:arrow-down-bold-circle-outline"),
                ("same", "same", "mdi:check-circle-outline"),
                ("firmer", "firmer", "mdi:arrow-up-bold-circle-outline"),
                ("too_much", "too much", "mdi:hand-back-left-outline"),
            )
        ),
    ),
    Command(
        "scene",
        "Show a named scene; during a session it holds until the next stage change.",
        SceneRequest,
        lambda room, a: room.apply_scene(a.scene),
        (
            Rest(
                "POST", "/scene", "Apply a named scene, without a routine", operation="apply_scene"
            ),
        ),
        conflicts=False,
    ),
)

# Replaced, never changed in place: a door that cached what it built from one table can
# tell a new one by identity.
_table: tuple[Command[Any], ...] = _BUILT_IN


def table() -> tuple[Command[Any], ...]:
    """Every command, in the order the doors list them."""
    return _table


def names() -> list[str]:
    return [command.name for command in _table]


def get(name: str) -> Command[Any] | None:
    return next((command for command in _table if command.name == name), None)


def register(command: Command[Any]) -> Callable[[], None]:
    """Add a command to the table; return the function that takes it out again."""
    global _table
    if get(command.name) is not None:
        raise ValueError(f"a command named {command.name!r} exists already")
    for rest in command.rest:
        if rest.path == SESSION_PATH and command.args.model_fields:
            raise ValueError(f"{command.name}: the shared session route takes no arguments")
    _table = (*_table, command)

    def unregister() -> None:
        global _table
        _table = tuple(c for c in _table if c is not command)

    return unregister
