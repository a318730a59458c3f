"""Profiles: what each receiver likes, how it shapes a session, and how feedback teaches it.

"Different strokes for different people." Pure: no I/O (the store and the API are
elsewhere). Three things live here:

- `Profile`: one receiver's preferences (pressure, areas to focus on and to avoid, warmer
  or cooler, dimmer or brighter light, oil, scent, music notes, preferred stage lengths)
  and what was learned from their feedback.
- `adapt(routine, scenes, profile)`: the routine and scenes as this session uses them,
  always within the SAFE BOUNDS below (module constants).
- `learn(profile, feedback, routine)`: the profile after one session's `Feedback`.

Which pressure a stage gets (`session_pressure`)
    The stage's learned pressure (`stage_pressure[stage]`) if there is one, otherwise
    the person's overall `pressure`, but no more than the technique calls for until
    they ask for more (`DEFAULT_CEILING`: effleurage is light to medium, closing is
    soft, as the routine says "light from now on"). Friction, the firmest technique,
    is never more than the overall `pressure`, learned or not, and always "only where
    welcome".

The learning rule (`learn`)
    0. Only what happened is learned: answers on a stage the session never reached
       (`reached`) are left out first, as if not given.
    1. Per stage named in the feedback, starting from the pressure the stage had this
       session (`session_pressure`, so an unknown stage starts from the overall
       pressure): "firmer" moves it one step up (soft -> medium -> firm; firm stays
       firm), "softer" one step down (firm -> medium -> soft; soft stays soft), "right"
       keeps it (and so records it when it was not known yet). For friction the result
       is capped at the overall pressure.
    2. `last_feedback` becomes exactly this feedback's per-stage words (quoted in the
       next session's guidance: "Last time: firmer on petrissage.").
    3. A favourite stage named in the feedback is remembered (none named: the old one
       stays). If it is timed, its preferred length grows by 10 % of what it was this
       session, capped at 1.5x the routine's own length (and 60 minutes); it never
       shrinks a length the person set longer themselves. Lengths are rounded to
       0.01 minute.
    4. `sessions` grows by one.
    The rating and the notes are not used: a score says how it went, not which way to
    change, and the per-stage words carry the direction. The overall `pressure` is the
    person's own setting and feedback never changes it (which is what keeps friction
    within what they said they like in general). Whoever stores feedback may keep the
    ratings as history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ambiance.core.scenes import NAME_PATTERN, Guidance, LightsSpec, Routine, Scene, Stage
from ambiance.errors import InvalidInput, NotFound

__all__ = [
    "BRIGHTER_FACTOR",
    "DEFAULT_CEILING",
    "DIMMER_FACTOR",
    "FAVOURITE_GROWTH",
    "FAVOURITE_MAX_FACTOR",
    "MAX_BRIGHTNESS",
    "MAX_KELVIN",
    "MAX_STAGE_FACTOR",
    "MAX_STAGE_MINUTES",
    "MIN_BRIGHTNESS",
    "MIN_KELVIN",
    "MIN_STAGE_FACTOR",
    "MIN_STAGE_MINUTES",
    "PRESSURES",
    "WARMTH_STEP_K",
    "Feedback",
    "Hint",
    "Pressure",
    "Profile",
    "adapt",
    "learn",
    "session_pressure",
    "stage_seconds",
]

# --- SAFE BOUNDS ---------------------------------------------------------------------

# Durations: a person's preferred length moves a timed stage to between half and twice
# the routine's own length, and never below 1 minute or above 60.
MIN_STAGE_FACTOR = 0.5
MAX_STAGE_FACTOR = 2.0
MIN_STAGE_MINUTES = 1.0
MAX_STAGE_MINUTES = 60.0

# Warmth: one step of 300 K, kept in 2000-4000 K: never colder than a warm-white room
# in spa mode, never warmer than Hue's warmest white. A step never moves the other way:
# a 1800 K scene made "warmer" stays 1800 K rather than being lifted to 2000 K (and a
# 5000 K scene made "warmer" comes down to 4000 K).
WARMTH_STEP_K = 300
MIN_KELVIN = 2000
MAX_KELVIN = 4000

# Brightness (percent) of lit scenes: x0.7 or x1.3 (to 0.1 %), kept in 2-70 %, and
# again never the other way. A dark scene (0 % or `on: false`) stays dark.
DIMMER_FACTOR = 0.7
BRIGHTER_FACTOR = 1.3
MIN_BRIGHTNESS = 2.0
MAX_BRIGHTNESS = 70.0

# Learning: the favourite stage grows by 10 % a session, up to 1.5x the routine's.
FAVOURITE_GROWTH = 1.10
FAVOURITE_MAX_FACTOR = 1.5

# --- the models ----------------------------------------------------------------------

Pressure = Literal["soft", "medium", "firm"]
Hint = Literal["softer", "right", "firmer"]
PRESSURES: tuple[Pressure, ...] = ("soft", "medium", "firm")

FRICTION = "friction"  # a stage (or its scene) of this name: the firmest technique
PREPARE = "prepare"  # the set-up stage: gets the oil, scent, music and notes
# Until a person teaches a stage otherwise, its pressure is their overall one but no
# more than its technique calls for: effleurage opens light to medium, closing is light.
DEFAULT_CEILING: dict[str, Pressure] = {"effleurage": "medium", "closing": "soft"}

MAX_AREAS = 20
MAX_STAGES = 64  # entries in each per-stage mapping
MAX_NOTES = 2000
MAX_SESSIONS = 1_000_000  # a counter's bound: a session a day for 2,700 years

StageName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# A text's ends are trimmed of blanks after its length is checked, and a text that must
# not be blank says so as a pattern: so the JSON Schema's `maxLength` and `pattern` say
# exactly what is accepted (a trim before the check let a schema-valid "  " fail it).
BLANKS = " \t\n\r"
NOT_BLANK = r"[^ \t\n\r]"


def _trimmed(text: str) -> str:
    return text.strip(BLANKS)


Trimmed = AfterValidator(_trimmed)


class _OnlyPatternKeys:
    """In the JSON Schema, no keys but the pattern's: pydantic writes a key pattern as
    `patternProperties` alone, which lets a key of any other shape through a schema
    reader (a client, a fuzzer) while the model refuses it."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["additionalProperties"] = False
        return json_schema


def _whole_number(value: object) -> object:
    """4.0 is the integer 4 (as JSON Schema's `integer` says); "4", true and 4.5 are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A profile's fields, by type: ProfileChanges (the API's PATCH body) takes the same ones.
DisplayName = Annotated[str, StringConstraints(max_length=100), Trimmed]
Area = Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK), Trimmed]
Areas = Annotated[list[Area], Field(max_length=MAX_AREAS)]
Short = Annotated[str, StringConstraints(max_length=200), Trimmed]
Notes = Annotated[str, StringConstraints(max_length=MAX_NOTES), Trimmed]
Warmth = Literal["warmer", "as_scene", "cooler"]
Brightness = Literal["dimmer", "as_scene", "brighter"]
Minutes = Annotated[float, Field(gt=0, le=24 * 60, allow_inf_nan=False)]
StageMinutes = Annotated[dict[StageName, Minutes], Field(max_length=MAX_STAGES), _OnlyPatternKeys()]
StagePressures = Annotated[
    dict[StageName, Pressure], Field(max_length=MAX_STAGES), _OnlyPatternKeys()
]
StageHints = Annotated[dict[StageName, Hint], Field(max_length=MAX_STAGES), _OnlyPatternKeys()]


class Profile(BaseModel):
    """One receiver: what they like, and what their feedback taught.

    `music` is a free-text note for the giver ("no vocals", "rain sounds", or the name of
    a playlist they like); it is shown in the prepare stage and does not change the
    scenes' playlists, which are names the room's player knows.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="The id: lowercase, e.g. `sam`.")
    display_name: DisplayName = ""
    pressure: Pressure = "medium"
    focus: Areas = Field(default_factory=list)
    avoid: Areas = Field(default_factory=list)
    warmth: Warmth = "as_scene"
    brightness: Brightness = "as_scene"
    music: Short = ""
    oil: Short = ""
    scent: Short = ""
    notes: Notes = ""
    stage_minutes: StageMinutes = Field(
        default_factory=dict,
        description="Preferred length of a stage in minutes (bounded when used).",
    )
    stage_pressure: StagePressures = Field(default_factory=dict, description="Learned per stage.")
    favourite_stage: StageName | None = None
    last_feedback: StageHints = Field(
        default_factory=dict,
        description="The latest feedback per stage, quoted in the next session.",
    )
    sessions: Annotated[int, BeforeValidator(_whole_number)] = Field(
        default=0, ge=0, le=MAX_SESSIONS, strict=True
    )

    @property
    def who(self) -> str:
        """How the guidance calls them: the display name, else the id."""
        return self.display_name or self.name


class Feedback(BaseModel):
    """What the receiver said after a session."""

    model_config = ConfigDict(extra="forbid")

    rating: Annotated[int, BeforeValidator(_whole_number)] = Field(
        ge=1, le=5, strict=True, description="1 (not for me) to 5 (lovely)."
    )
    pressure: dict[Annotated[str, StringConstraints(max_length=64)], Hint] = Field(
        default_factory=dict, max_length=MAX_STAGES, description="Per stage name."
    )
    favourite_stage: Annotated[str, StringConstraints(max_length=64)] | None = None
    notes: Notes = ""

    def check(self, routine: Routine) -> None:
        """Raise NotFound if a stage named here is not a stage of `routine` (a 404, as for
        any other name that does not exist: the schema cannot know a routine's stages)."""
        known = [stage.name for stage in routine.stages]
        named = [*self.pressure]
        if self.favourite_stage is not None:
            named.append(self.favourite_stage)
        for name in named:
            if name not in known:
                raise NotFound("stage", name, known=known)  # known: the routine's stages

    def about(self, stages: Collection[str]) -> Feedback:
        """This feedback with only its answers on `stages` (the rating and notes stay)."""
        favourite = self.favourite_stage if self.favourite_stage in stages else None
        pressure = {name: hint for name, hint in self.pressure.items() if name in stages}
        return self.model_copy(update={"pressure": pressure, "favourite_stage": favourite})


# --- pressure ------------------------------------------------------------------------


def _rank(pressure: Pressure) -> int:
    return PRESSURES.index(pressure)


def _at_most(pressure: Pressure, ceiling: Pressure) -> Pressure:
    return PRESSURES[min(_rank(pressure), _rank(ceiling))]


def _step(pressure: Pressure, hint: Hint) -> Pressure:
    move = {"softer": -1, "right": 0, "firmer": 1}[hint]
    return PRESSURES[max(0, min(len(PRESSURES) - 1, _rank(pressure) + move))]


def _is_friction(stage: Stage) -> bool:
    return FRICTION in (stage.name, stage.scene)


def _is_prepare(stage: Stage) -> bool:
    return PREPARE in (stage.name, stage.scene)


def session_pressure(profile: Profile, stage: Stage) -> Pressure:
    """The pressure this person gets in this stage (see the module docstring)."""
    learned = profile.stage_pressure.get(stage.name)
    if learned is not None:
        pressure = learned
    else:
        ceiling = DEFAULT_CEILING.get(stage.name) or DEFAULT_CEILING.get(stage.scene, "firm")
        pressure = _at_most(profile.pressure, ceiling)
    if _is_friction(stage):
        pressure = _at_most(pressure, profile.pressure)
    return pressure


# --- durations, light ----------------------------------------------------------------


def stage_seconds(profile: Profile, stage: Stage) -> float | None:
    """The stage's length for this person, in seconds, within the bounds; None if untimed.

    Without a preferred length (or when the bounds leave no room, for a stage under
    1 minute or over 2 hours) the routine's own length stays.
    """
    own = stage.duration
    minutes = profile.stage_minutes.get(stage.name)
    if own is None or minutes is None:
        return own
    low = max(own * MIN_STAGE_FACTOR, MIN_STAGE_MINUTES * 60)
    high = min(own * MAX_STAGE_FACTOR, MAX_STAGE_MINUTES * 60)
    if low > high:
        return own
    return min(max(minutes * 60, low), high)


def _toward(value: float, moved: float, low: float, high: float) -> float:
    """`moved` kept within [low, high], but never on the other side of `value`."""
    bounded = min(max(moved, low), high)
    return min(value, bounded) if moved < value else max(value, bounded)


def _kelvin(kelvin: int | None, warmth: str) -> int | None:
    if kelvin is None or warmth == "as_scene":
        return kelvin
    step = -WARMTH_STEP_K if warmth == "warmer" else WARMTH_STEP_K
    return int(_toward(kelvin, kelvin + step, MIN_KELVIN, MAX_KELVIN))


def _brightness(lights: LightsSpec, preference: str) -> float:
    percent = lights.brightness
    if preference == "as_scene" or not lights.on or percent <= 0:
        return percent  # a dark scene stays dark
    factor = DIMMER_FACTOR if preference == "dimmer" else BRIGHTER_FACTOR
    return _toward(percent, round(percent * factor, 1), MIN_BRIGHTNESS, MAX_BRIGHTNESS)


def _adapt_scene(scene: Scene, profile: Profile) -> Scene:
    kelvin = _kelvin(scene.lights.kelvin, profile.warmth)
    brightness = _brightness(scene.lights, profile.brightness)
    if kelvin == scene.lights.kelvin and brightness == scene.lights.brightness:
        return scene
    lights = scene.lights.model_copy(update={"kelvin": kelvin, "brightness": brightness})
    return scene.model_copy(update={"lights": lights})


# --- guidance ------------------------------------------------------------------------

_PRESSURE_WORDS: dict[Pressure, str] = {
    "soft": "a soft touch",
    "medium": "medium pressure",
    "firm": "firm pressure",
}


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _last_time(stage: str, hint: Hint) -> str:
    return f"{stage} was just right" if hint == "right" else f"{hint} on {stage}"


def _join(*parts: str | None) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def _areas_step(profile: Profile) -> str | None:
    who = profile.who
    sentences = []
    if profile.focus:
        sentences.append(f"{who} would like extra time on: {_listing(profile.focus)}.")
    if profile.avoid:
        sentences.append(f"Stay away from: {_listing(profile.avoid)}.")
    return " ".join(sentences) or None


def _hands_on(stage: Stage, profile: Profile) -> bool:
    """A stage where pressure matters: its guidance speaks of pressure, or they did."""
    return (
        stage.guidance.pressure is not None
        or stage.name in profile.stage_pressure
        or stage.name in profile.last_feedback
    )


def _prepare_guidance(stage: Stage, routine: Routine, profile: Profile) -> Guidance:
    who = profile.who
    names = [s.name for s in routine.stages]
    last = [_last_time(s, h) for s, h in profile.last_feedback.items() if s in names]
    favourite = profile.favourite_stage if profile.favourite_stage in names else None
    pressure = _join(
        f"{who} likes {_PRESSURE_WORDS[profile.pressure]} in general.",
        f"Last time: {_listing(last)}." if last else None,
        f"Their favourite so far is {favourite}." if favourite else None,
        stage.guidance.pressure,
    )
    likes = [
        f"{label}: {value}"
        for label, value in (("oil", profile.oil), ("scent", profile.scent))
        if value
    ]
    if profile.music:
        likes.append(f"music: {profile.music}")
    personal = [
        f"For {who}: {'; '.join(likes)}." if likes else None,
        f"Notes about {who}: {profile.notes}" if profile.notes else None,
        _areas_step(profile),
    ]
    steps = [step for step in personal if step] + list(stage.guidance.steps)
    return stage.guidance.model_copy(
        update={
            "steps": steps,
            "pressure": pressure,
            "caution": _caution(stage, profile),
        }
    )


def _stage_guidance(stage: Stage, profile: Profile) -> Guidance:
    who = profile.who
    guidance = stage.guidance
    summary = guidance.summary
    if profile.favourite_stage == stage.name:
        summary = _join(summary, f"This is {who}'s favourite part: take your time.")
    update: dict[str, object] = {"summary": summary, "caution": _caution(stage, profile)}
    if _hands_on(stage, profile):
        pressure = session_pressure(profile, stage)
        words = _PRESSURE_WORDS[pressure]
        if _is_friction(stage):
            mine = (
                f"At most {words} for {who} here: never firmer than they like in "
                "general, and only where welcome."
            )
        else:
            mine = f"Use {words} for {who} here."
        hint = profile.last_feedback.get(stage.name)
        update["pressure"] = _join(
            mine,
            f"Last time: {_last_time(stage.name, hint)}." if hint else None,
            guidance.pressure,
        )
        areas = _areas_step(profile)
        if areas:
            update["steps"] = [areas, *guidance.steps]
    return guidance.model_copy(update=update)


def _caution(stage: Stage, profile: Profile) -> str | None:
    """The routine's own caution, always kept, and then the person's areas to avoid."""
    if not profile.avoid:
        return stage.guidance.caution
    return _join(
        stage.guidance.caution, f"{profile.who} asked you to avoid: {_listing(profile.avoid)}."
    )


# --- adapt and learn -----------------------------------------------------------------


def adapt(
    routine: Routine, scenes: Mapping[str, Scene], profile: Profile
) -> tuple[Routine, dict[str, Scene]]:
    """The routine and scenes for this person's session, within the SAFE BOUNDS.

    The routine keeps its name, stage names and order (so goto and the state still
    match); each stage gets this person's length (`stage_seconds`) and guidance. The
    scenes returned are ALL the scenes the routine references, by their own names,
    adapted (warmth, brightness) or unchanged: the session looks every stage's scene
    up there. Raises NotFound for a stage whose scene is not in `scenes`.
    """
    adapted: dict[str, Scene] = {}
    for stage in routine.stages:
        if stage.scene in adapted:
            continue
        scene = scenes.get(stage.scene)
        if scene is None:
            raise NotFound("scene", stage.scene, known=list(scenes))
        adapted[stage.scene] = _adapt_scene(scene, profile)
    stages = [
        stage.model_copy(
            update={
                "duration": stage_seconds(profile, stage),
                "guidance": _prepare_guidance(stage, routine, profile)
                if _is_prepare(stage)
                else _stage_guidance(stage, profile),
            }
        )
        for stage in routine.stages
    ]
    return routine.model_copy(update={"stages": stages}), adapted


def learn(
    profile: Profile,
    feedback: Feedback,
    routine: Routine,
    reached: Collection[str] | None = None,
) -> Profile:
    """The profile after this feedback on `routine` (the rule: module docstring).

    `reached`: the stages the session got to (None: all of them). An answer about any
    other stage is not learned: it speaks of something that did not happen.
    Pure: `profile` is left as it was. Raises NotFound for a stage that is not in the
    routine, InvalidInput when the profile would grow past its limits.
    """
    feedback.check(routine)
    if reached is not None:
        feedback = feedback.about(reached)
    stage_pressure = dict(profile.stage_pressure)
    for name, hint in feedback.pressure.items():
        stage = routine.stage(name)
        pressure = _step(session_pressure(profile, stage), hint)
        if _is_friction(stage):
            pressure = _at_most(pressure, profile.pressure)
        stage_pressure[name] = pressure
    stage_minutes = dict(profile.stage_minutes)
    favourite = feedback.favourite_stage or profile.favourite_stage
    if feedback.favourite_stage is not None:
        stage = routine.stage(feedback.favourite_stage)
        now = stage_seconds(profile, stage)
        if stage.duration is not None and now is not None:
            cap = min(stage.duration * FAVOURITE_MAX_FACTOR, MAX_STAGE_MINUTES * 60) / 60
            grown = round(min(now / 60 * FAVOURITE_GROWTH, cap), 2)
            if grown > now / 60:
                stage_minutes[stage.name] = grown
    data = profile.model_dump()
    data.update(
        stage_pressure=stage_pressure,
        stage_minutes=stage_minutes,
        favourite_stage=favourite,
        last_feedback=dict(feedback.pressure),
        sessions=profile.sessions + 1,
    )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"the profile {profile.name!r} cannot take this feedback: {exc.errors()[0]['msg']}"
        ) from None
