"""Profiles: what each receiver likes, how it shapes a session, and how feedback teaches it.

"Different strokes for different people." Pure: no I/O (the store and the API are
elsewhere). Three things live here:

- `Profile`: one receiver's preferences (pressure, areas to focus on and to avoid, warmer
  or cooler, dimmer or brighter light, oil, scent, music notes, preferred stage lengths)
  and what was learned from their feedback.
- `adapt(routine, scenes, profile)`: the routine and scenes as this session uses them,
  always within the SAFE BOUNDS below (module constants).
- `learn(profile, feedback, routine)`: the profile after one session's `Feedback`;
  `learn_checkins(profile, routine, taught)`: after its pressure check-in answers, at its
  end (core/checkins.py says which answers count).
- `pressure_choices(...)`: each hands-on stage's guidance at each pressure level, within
  the caps, for the check-in answers to move between.

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
    2. `last_feedback` becomes this feedback's per-stage words (quoted in the next
       session's guidance: "Last time: firmer on petrissage."), beside the words of the
       session's check-in answers on stages it does not name (`answered`).
    Check-in answers were learned at the session's end (`learn_checkins`: a stage's
    pressure becomes the level its last answer left it at), so rule 1 starts from what
    the stage had after them: the feedback's word is about that.
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

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    ValidationError,
    computed_field,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ambiance.core import areas as body
from ambiance.core.areas import AREAS, AreaId
from ambiance.core.scenes import (
    NAME_PATTERN,
    PRESSURES,
    Guidance,
    LightsSpec,
    Position,
    Pressure,
    Routine,
    Scene,
    Stage,
    Step,
)
from ambiance.errors import Conflict, InvalidInput, NotFound

__all__ = [
    "BRIGHTER_FACTOR",
    "DAY_QUESTIONS",
    "DEFAULT_CEILING",
    "DIMMER_FACTOR",
    "FAVOURITE_GROWTH",
    "FAVOURITE_MAX_FACTOR",
    "FOCUS_GROWTH",
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
    "DayCheck",
    "Feedback",
    "HealthAnswers",
    "Hint",
    "NotToday",
    "Plan",
    "Pressure",
    "PressureChoice",
    "Profile",
    "StagePressure",
    "StopSign",
    "UnmatchedAreas",
    "adapt",
    "learn",
    "learn_checkins",
    "plan",
    "pressure_choices",
    "session_pressure",
    "stage_seconds",
    "stop_signs",
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

# Focus: a stage that works an area they want more time on gets 25 % more time (within
# the duration bounds above), unless they set that stage's length themselves.
FOCUS_GROWTH = 1.25

# --- the models ----------------------------------------------------------------------

Hint = Literal["softer", "right", "firmer"]

FRICTION = "friction"  # a stage (or its scene) of this name: the firmest technique
PREPARE = "prepare"  # the set-up stage: gets the oil, scent, music and notes
# Until a person teaches a stage otherwise, its pressure is their overall one but no
# more than its technique calls for: effleurage opens light to medium, closing is light.
DEFAULT_CEILING: dict[str, Pressure] = {"effleurage": "medium", "closing": "soft"}

MAX_AREAS = len(AREAS)  # each area at most once
MAX_FREE_AREAS = 20  # free-text areas kept from before areas had ids
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
FreeAreas = Annotated[list[Area], Field(max_length=MAX_FREE_AREAS)]


def _once(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))  # "shoulders" and "Shoulders" are one area


Areas = Annotated[list[AreaId], Field(max_length=MAX_AREAS), AfterValidator(_once)]
AreaPressures = Annotated[dict[AreaId, Pressure], Field(max_length=MAX_AREAS)]
# A question answered "where": `true` (yes, where not said), a list of areas, or
# `false`/`[]` (no). Left out (null): not answered.
Where = StrictBool | Areas
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


class UnmatchedAreas(BaseModel):
    """Areas a profile named in free text before areas had ids, kept as written where
    they match no area (and, for areas to avoid, also where they only contain one)."""

    model_config = ConfigDict(extra="forbid")

    focus: FreeAreas = Field(default_factory=list)
    avoid: FreeAreas = Field(default_factory=list)


class HealthAnswers(BaseModel):
    """Health questions that change the massage; each optional (null: not answered).

    Kept on this machine only: in the profile, its export, and gone with it.
    """

    model_config = ConfigDict(extra="forbid")

    pregnant: StrictBool | None = Field(
        default=None, description="Side-lying, soft on legs and lower back."
    )
    blood_thinners: StrictBool | None = Field(
        default=None, description="Blood thinners or a clotting disorder: light pressure only."
    )
    dvt_history: StrictBool | None = Field(
        default=None, description="A past deep-vein thrombosis (a clot): light pressure only."
    )
    varicose_veins: Where | None = Field(
        default=None, description="Where: no pressure on or below them (true: the legs)."
    )
    osteoporosis: StrictBool | None = Field(default=None, description="Light pressure only.")
    recent_injury: Where | None = Field(
        default=None, description="A recent injury, operation or fresh bruise, and where."
    )
    skin_condition: Where | None = Field(
        default=None, description="A rash or broken skin, and where."
    )
    nut_allergy: StrictBool | None = Field(default=None, description="No almond or other nut oils.")


class DayCheck(BaseModel):
    """The questions of the day, asked while getting ready; each optional."""

    model_config = ConfigDict(extra="forbid")

    fever_or_unwell: StrictBool | None = Field(
        default=None, description="A fever, an infection or feeling unwell: no massage today."
    )
    swollen_calf: StrictBool | None = Field(
        default=None,
        description="A calf that is swollen, warm and painful (a possible clot): no massage; "
        "see a doctor.",
    )
    painkillers_or_alcohol: StrictBool | None = Field(
        default=None, description="Painkillers or alcohol today: light pressure only."
    )
    sore: Where | None = Field(default=None, description="Anything sore today, and where.")


# The day's questions as a phone or a speaker asks them, in the order asked: each is a
# DayCheck field, and `where` ones are answered with the body areas (or yes/no).
DAY_QUESTIONS: tuple[tuple[str, str, bool], ...] = (
    ("fever_or_unwell", "Fever or feeling unwell?", False),
    ("painkillers_or_alcohol", "Painkillers or alcohol today?", False),
    ("sore", "Anything sore? Where?", True),
    ("swollen_calf", "A calf that is swollen, warm and painful?", False),
)


def _drop_warnings(data: Any) -> Any:
    # `warnings` is worked out from the profile: one sent back (a GET's body PUT again,
    # an export imported) is read past, not refused.
    if isinstance(data, dict) and "warnings" in data:
        data = {k: v for k, v in data.items() if k != "warnings"}
    return data


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
    focus: Areas = Field(default_factory=list, description="Body areas to spend more time on.")
    avoid: Areas = Field(default_factory=list, description="Body areas to leave out.")
    area_pressure: AreaPressures = Field(
        default_factory=dict, description="Pressure per body area (the area's steps use it)."
    )
    unmatched_areas: UnmatchedAreas = Field(
        default_factory=UnmatchedAreas,
        description="Free-text areas from before areas had ids, kept as written.",
    )
    health: HealthAnswers = Field(default_factory=HealthAnswers)
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

    _drop = model_validator(mode="before")(_drop_warnings)

    @property
    def who(self) -> str:
        """How the guidance calls them: the display name, else the id."""
        return self.display_name or self.name

    @computed_field(description="What in this profile the session cannot use as it is.")
    def warnings(self) -> list[str]:
        found = []
        for kind, texts in (
            ("focus", self.unmatched_areas.focus),
            ("avoid", self.unmatched_areas.avoid),
        ):
            for text in texts:
                found.append(
                    f"{kind}: {text!r} is kept as written (shown to the giver) but is not a "
                    "body area, so no step changes for it: name the area by its id or name"
                )
        both = [a for a in self.focus if a in self.avoid]
        if both:
            found.append(f"focus and avoid both name {body.listing(both)}: it is left out")
        for question in ("recent_injury", "skin_condition"):
            if getattr(self.health, question) is True:
                found.append(
                    f"health.{question}: where? Name the areas so the steps on them are left "
                    "out; until then the giver is asked to find out and keep away"
                )
        return found


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


def _lowest(pressures: Iterable[Pressure | None]) -> Pressure | None:
    ranks = [_rank(p) for p in pressures if p is not None]
    return PRESSURES[min(ranks)] if ranks else None


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


# --- health and today: the plan ------------------------------------------------------

_LEGS = ("thighs", "back_of_knee", "calves", "feet")
# Pregnancy: no deep work on the legs or the lower back.
_PREGNANCY_SOFT = ("lower_back", "thighs", "calves")
# Oils pressed from nuts (and the seeds sold with them): none with a nut allergy.
_NUT_OILS = re.compile(
    r"almond|nut|macadamia|pecan|pistachio|hazel|cashew|brazil|argan|kukui|shea|marula",
    re.IGNORECASE,
)
SAFE_OILS = "grapeseed, sunflower or jojoba"
ROOM_ONLY_ROUTINE = "quiet-room"  # the relaxing room without a massage (scenes/)


class NotToday(Conflict):
    """A stop sign among today's answers: no massage (HTTP 409).

    The message names the stop signs in general words, never which one was answered (it
    may reach a log or an MQTT error topic); `detail` names the answers, for the asker.
    """

    code = "no_massage_today"


@dataclass(frozen=True)
class StopSign:
    answer: str  # the DayCheck field
    why: str


@dataclass
class Plan:
    """What this person's health answers and today's change in the session."""

    position: Position | None = None  # every face-down stage becomes this
    cap: Pressure | None = None  # the most pressure anywhere
    area_caps: dict[str, Pressure] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # areas left out for health, today
    notes: list[str] = field(default_factory=list)  # for the giver, while getting ready
    oil: list[str] = field(default_factory=list)

    def soft_on(self, area_ids: Iterable[str]) -> bool:
        """Only a soft touch on these areas: no deep work (friction) there."""
        return self.cap == "soft" or all(self.area_caps.get(a) == "soft" for a in area_ids)


def _where(answer: bool | list[str] | None, when_unsaid: Iterable[str] = ()) -> list[str] | None:
    """The areas an answer names; `when_unsaid` for a plain yes; None for no answer/no."""
    if answer is None or answer is False or answer == []:
        return None
    return list(when_unsaid) if answer is True else list(answer)


def stop_signs(profile: Profile | None, today: DayCheck | None) -> list[StopSign]:
    """The answers that mean no massage today."""
    if today is None:
        return []
    found = []
    if today.fever_or_unwell:
        found.append(
            StopSign(
                "fever_or_unwell",
                "with a fever, an infection or feeling unwell the body needs rest, and a "
                "massage can make it worse",
            )
        )
    if today.swollen_calf:
        found.append(
            StopSign(
                "swollen_calf",
                "a calf that is swollen, warm and painful can be a blood clot: do not massage "
                "it or anywhere else, and see a doctor today",
            )
        )
    return found


def refuse_if_stopped(profile: Profile | None, today: DayCheck | None) -> None:
    """Raise NotToday when a stop sign was answered."""
    signs = stop_signs(profile, today)
    if not signs:
        return
    raise NotToday(
        "No massage today: a fever or feeling unwell, or a calf that is swollen, warm and "
        "painful, means no massage (for the calf, see a doctor today). The relaxing room "
        'is still there without the massage: start again with "room_only": true.',
        detail={
            "stop_signs": [{"answer": s.answer, "why": s.why} for s in signs],
            "room_only": {"room_only": True},
        },
    )


def plan(profile: Profile, today: DayCheck | None = None) -> Plan:
    """Turn the health answers (and today's) into position, caps, areas left out, oil."""
    health = profile.health
    today = today or DayCheck()
    out = Plan()
    who = profile.who
    left: list[str] = []
    if health.pregnant:
        out.position = "side_lying"
        out.area_caps.update(dict.fromkeys(_PREGNANCY_SOFT, "soft"))
        out.notes.append(
            f"Side-lying for {who}, never face down; a soft touch only on the lower back and "
            "the legs."
        )
        out.oil.append("No strong essential oils: a plain carrier oil, or at most a faint scent.")
    # Blood thinners, a clotting disorder, a past clot or fragile bones: light always;
    # painkillers or alcohol: they cannot judge pressure today.
    always = bool(health.blood_thinners or health.dvt_history or health.osteoporosis)
    if always or today.painkillers_or_alcohol:
        out.cap = "soft"
        when = "throughout" if always else "today"
        out.notes.append(
            f"A soft touch only, {when}: no deep work and no pressing on bones, and no friction."
        )
    varicose = _where(health.varicose_veins, _LEGS)
    if varicose:
        left += body.below(varicose)
    for answer in (health.recent_injury, health.skin_condition, today.sore):
        named = _where(answer)
        if named:
            left += named
    asked = [
        text
        for answer, text in (
            (health.recent_injury, "an injury, operation or fresh bruise"),
            (health.skin_condition, "a rash or broken skin"),
            (today.sore, "anywhere sore today"),
        )
        if answer is True
    ]
    if asked:
        out.notes.append(
            f"Ask {who} where exactly there is {body_join(asked)}, and keep well away from it."
        )
    out.left_out = _once([a for a in left if a not in profile.avoid])
    if health.nut_allergy:
        out.oil.append(f"No almond or other nut oils: use {SAFE_OILS} oil.")
    return out


def body_join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


# --- guidance ------------------------------------------------------------------------

_PRESSURE_WORDS: dict[Pressure, str] = {
    "soft": "a soft touch",
    "medium": "medium pressure",
    "firm": "firm pressure",
}

_POSITION_SETUP: dict[Position, str] = {
    "face_down": "Help {who} lie face down with a pillow under the ankles, so the lower back "
    "can relax.",
    "side_lying": "Help {who} lie on their side: a pillow under the head, one between the "
    "knees and one to hug. Sit or kneel behind them and work the side facing up; about "
    "halfway through, help them turn over slowly (the pillows go with them) and do the same "
    "on the other side.",
    "seated": "Seat {who} back to front on a chair, leaning forward on a cushion over the "
    "backrest.",
    "face_up": "Help {who} lie on their back with a pillow under the knees.",
}
_POSITION_WORDS: dict[Position, str] = {
    "face_down": "lies face down",
    "side_lying": "lies on their side: work the side facing up, from behind them",
    "seated": "sits leaning forward",
    "face_up": "lies on their back",
}

# A step that worked an area now left out, rewritten to name only the others.
_REWRITE: dict[str | None, str] = {
    "effleurage": "Long, slow, gliding strokes with flat, relaxed hands over the {areas} only.",
    "petrissage": "Knead the {areas} only: lift, squeeze and roll the muscle, one hand after "
    "the other.",
    "friction": "Find one tight spot on the {areas} only, make a few small, slow circles on "
    "it, then smooth it over with a flat hand.",
    "holding": "Rest your hands still on the {areas} for a few breaths.",
    None: "Work the {areas} only here.",
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


def _note(text: str) -> Step:
    return Step(text=text, areas=[])


def _hands_on(stage: Stage, profile: Profile) -> bool:
    """A stage where pressure matters: its guidance speaks of pressure, or they did."""
    return (
        stage.guidance.pressure is not None
        or stage.name in profile.stage_pressure
        or stage.name in profile.last_feedback
    )


def _worked(step: Step) -> list[str]:
    """The areas a step works: as it names them, or as its text names them (an area of
    caution a plain text names is one to stay off: "beside the spine, never on it")."""
    if step.areas is not None:
        return list(step.areas)
    return [a for a in body.areas_in_text(step.text) if not AREAS[a].caution]


@dataclass
class _Person:
    """Everything adapt() needs about whom the session is for."""

    profile: Profile
    plan: Plan
    guest: bool  # no profile: only today's answers

    @property
    def who(self) -> str:
        return "them" if self.guest else self.profile.who

    @property
    def left_out(self) -> list[str]:
        return [*self.profile.avoid, *self.plan.left_out]

    def pressure_on(self, stage: Stage, area_ids: Iterable[str]) -> Pressure:
        """The pressure on these areas in this stage (the lowest of theirs; no areas:
        the stage's), never past a cap."""
        found = [self._on_area(stage, a) for a in area_ids]
        if found:
            return _lowest(found) or found[0]
        stage_pressure = session_pressure(self.profile, stage)
        return _lowest([stage_pressure, self.plan.cap]) or stage_pressure

    def _on_area(self, stage: Stage, area_id: str) -> Pressure:
        # An area's own setting counts as their overall pressure there, so the technique's
        # limits and what the stage learned still apply; a softer setting is always kept.
        pressure = session_pressure(self.profile, stage)
        own = self.profile.area_pressure.get(area_id)
        if own is not None:
            there = session_pressure(self.profile.model_copy(update={"pressure": own}), stage)
            pressure = own if _rank(own) < _rank(there) else there
        return _lowest([pressure, self.plan.cap, self.plan.area_caps.get(area_id)]) or pressure


def _step_for(stage: Stage, step: Step, person: _Person, position: Position) -> Step | None:
    """The step for this session, or None when it would work only what is left out."""
    if step.position is not None:
        if step.position == position:
            return step
        return _note(_POSITION_SETUP[position].format(who=person.who)).model_copy(
            update={"position": position}
        )
    worked = _worked(step)
    if not worked:
        return step
    friction = step.technique == "friction" or (step.technique is None and _is_friction(stage))
    keep = [a for a in worked if a not in person.left_out]
    if friction:
        keep = [a for a in keep if not person.plan.soft_on([a])]
    muscles = [a for a in keep if not AREAS[a].caution]
    if not muscles:
        return None
    text = step.text
    if keep != worked:
        if not step.named:
            return None  # plain text that names a left-out area: it cannot be rewritten
        text = _REWRITE[step.technique].format(areas=body.listing(muscles))
    pressure = _lowest([person.pressure_on(stage, keep), step.pressure])
    return step.model_copy(
        update={
            "text": text,
            "areas": keep,
            "pressure": pressure,
            "focus": any(a in person.profile.focus for a in keep)
            and not any(a in person.profile.avoid for a in keep),
        }
    )


def _stage_steps(stage: Stage, person: _Person, position: Position) -> list[Step] | None:
    """The stage's steps for this session; None when nothing of the stage is left to do.

    A stage is its technique: that of its first step that works an area. When every step
    of that technique is gone (the kneading of a kneading stage), what remains (a few
    linking strokes) is not the stage any more, and its summary would still speak of
    what was left out: the stage is left out.
    """
    steps: list[Step] = []
    own: str | None = None
    had_work = False
    left_work = False
    for step in stage.guidance.steps:
        works = step.position is None and bool(_worked(step))
        if works and not had_work:
            own = step.technique
        had_work |= works
        new = _step_for(stage, step, person, position)
        if new is not None and new.text not in (s.text for s in steps):
            steps.append(new)  # (two rewritten steps may say the same: once is enough)
            left_work |= works and step.technique == own
    return None if had_work and not left_work else steps


def _caution(stage: Stage, person: _Person) -> str | None:
    """The routine's own caution, always kept, then what this person leaves out."""
    profile = person.profile
    avoid = [AREAS[a].name for a in profile.avoid] + profile.unmatched_areas.avoid
    return (
        _join(
            stage.guidance.caution,
            f"{person.who} asked you to avoid: {_listing(avoid)}." if avoid else None,
            f"Also leave out today: {body.listing(person.plan.left_out)}."
            if person.plan.left_out
            else None,
        )
        or None
    )


def _pressure_line(stage: Stage, person: _Person, steps: list[Step]) -> str | None:
    profile = person.profile
    who = person.who
    guidance = stage.guidance
    pressure = person.pressure_on(stage, [])
    words = _PRESSURE_WORDS[pressure]
    if _is_friction(stage):
        mine = (
            f"At most {words} for {who} here: never firmer than they like in general, and "
            "only where welcome."
        )
    else:
        mine = f"Use {words} for {who} here."
    by_pressure: dict[Pressure, list[str]] = {}
    for area_id in _once([a for step in steps for a in step.areas or () if not AREAS[a].caution]):
        own = person.pressure_on(stage, [area_id])
        if own != pressure:
            by_pressure.setdefault(own, []).append(area_id)
    exceptions = [
        f"On the {body.listing(ids)}: {_PRESSURE_WORDS[p]}." for p, ids in by_pressure.items()
    ]
    hint = profile.last_feedback.get(stage.name)
    return _join(
        mine,
        *exceptions,
        f"Last time: {_last_time(stage.name, hint)}." if hint else None,
        guidance.pressure,
    )


def _focus_summary(stage: Stage, person: _Person, steps: list[Step]) -> str | None:
    focused = _once(
        [a for s in steps if s.focus for a in s.areas or () if a in person.profile.focus]
    )
    if not focused:
        return None
    worked = {a for s in steps for a in s.areas or () if not AREAS[a].caution}
    names = body.listing(focused)
    if worked <= set(focused):
        return f"{person.who} would like extra time on the {names}: take your time."
    return (
        f"{person.who} would like extra time on the {names}: give them at least half of this stage."
    )


def _stage_guidance(
    stage: Stage, person: _Person, steps: list[Step], position: Position, own: Position
) -> Guidance:
    profile = person.profile
    guidance = stage.guidance
    summary = guidance.summary
    if profile.favourite_stage == stage.name:
        summary = _join(summary, f"This is {person.who}'s favourite part: take your time.")
    if position != own and any(step.areas for step in steps):
        summary = _join(summary, f"{person.who} {_POSITION_WORDS[position]}.")
    summary = _join(summary, _focus_summary(stage, person, steps))
    update: dict[str, object] = {
        "summary": summary,
        "caution": _caution(stage, person),
        "steps": steps,
    }
    if _hands_on(stage, profile):
        update["pressure"] = _pressure_line(stage, person, steps)
    return guidance.model_copy(update=update)


def _oil_line(person: _Person) -> str | None:
    profile = person.profile
    likes = []
    oil = profile.oil
    if oil and profile.health.nut_allergy and _NUT_OILS.search(oil):
        oil = ""  # their oil is a nut oil: the plan's advice says what to use instead
    for label, value in (("oil", oil), ("scent", profile.scent)):
        if value:
            likes.append(f"{label}: {value}")
    if profile.music:
        likes.append(f"music: {profile.music}")
    return f"For {profile.who}: {'; '.join(likes)}." if likes else None


def _prepare_guidance(
    stage: Stage, routine: Routine, person: _Person, position: Position, dropped: list[Stage]
) -> Guidance:
    profile = person.profile
    who = person.who
    names = [s.name for s in routine.stages]
    last = [_last_time(s, h) for s, h in profile.last_feedback.items() if s in names]
    favourite = profile.favourite_stage if profile.favourite_stage in names else None
    pressure = _join(
        None if person.guest else f"{who} likes {_PRESSURE_WORDS[profile.pressure]} in general.",
        f"Last time: {_listing(last)}." if last else None,
        f"Their favourite so far is {favourite}." if favourite else None,
        stage.guidance.pressure,
    )
    focus = [AREAS[a].name for a in profile.focus if a not in profile.avoid]
    focus += profile.unmatched_areas.focus
    personal = [
        _oil_line(person),
        *person.plan.oil,
        f"Notes about {who}: {profile.notes}" if profile.notes else None,
        f"{who} would like extra time on: {_listing(focus)}." if focus else None,
        *person.plan.notes,
        f"Left out for {who}: {_listing(s.title or s.name for s in dropped)} (nothing "
        "would be left to do there)."
        if dropped
        else None,
    ]
    steps = [_note(text) for text in personal if text]
    steps += _stage_steps(stage, person, position) or []
    return stage.guidance.model_copy(
        update={"steps": steps, "pressure": pressure or None, "caution": _caution(stage, person)}
    )


# --- adapt and learn -----------------------------------------------------------------


def adapt(
    routine: Routine,
    scenes: Mapping[str, Scene],
    profile: Profile | None,
    today: DayCheck | None = None,
) -> tuple[Routine, dict[str, Scene]]:
    """The routine and scenes for this person's session, within the SAFE BOUNDS.

    The routine keeps its name and its stages' names and order; each stage gets this
    person's length (`stage_seconds`, a focus stage grown by FOCUS_GROWTH) and guidance,
    and a hands-on stage with nothing left to do (every step on an area left out) is
    left out. No step names an area they avoid or their health or today's answers leave
    out; pressure stays within the caps; a face-down routine becomes side-lying for a
    pregnancy, and a stage where the position changes says how to set it up. `profile`
    None: a session for someone without a profile, shaped by `today` only. The scenes
    returned are ALL the scenes the routine's stages reference, by their own names, adapted
    (warmth, brightness) or unchanged. Raises NotFound for a stage whose scene is not in
    `scenes`, NotToday for a stop sign in `today`.
    """
    refuse_if_stopped(profile, today)
    guest = profile is None
    who = profile or Profile(name="guest")
    person = _Person(who, plan(who, today), guest)
    adapted: dict[str, Scene] = {}
    for stage in routine.stages:
        if stage.scene in adapted:
            continue
        scene = scenes.get(stage.scene)
        if scene is None:
            raise NotFound("scene", stage.scene, known=list(scenes))
        adapted[stage.scene] = _adapt_scene(scene, who)
    kept: list[tuple[Stage, list[Step], Position, Position]] = []
    dropped: list[Stage] = []
    carried: list[Step] = []  # how to set up a position, from stages left out
    for stage in routine.stages:
        own = routine.position_of(stage)
        position = person.plan.position if person.plan.position and own == "face_down" else own
        steps = [] if _is_prepare(stage) else _stage_steps(stage, person, position)
        if steps is None:
            dropped.append(stage)
            carried += _set_up(stage, person, position)
            continue
        if not _is_prepare(stage):
            steps = _with_set_up(steps, position, carried, kept[-1][2] if kept else None, person)
        carried = []
        kept.append((stage, steps, position, own))
    stages = []
    for stage, steps, position, own in kept:
        if _is_prepare(stage):
            guidance = _prepare_guidance(stage, routine, person, position, dropped)
        else:
            guidance = _stage_guidance(stage, person, steps, position, own)
        duration = stage_seconds(who, stage)
        if any(s.focus for s in steps) and stage.name not in who.stage_minutes:
            duration = _grown(stage)
        stages.append(
            stage.model_copy(
                update={
                    "duration": duration,
                    "guidance": guidance,
                    "position": None if position == routine.position else position,
                }
            )
        )
    # A routine whose every stage is left out cannot be: it keeps its first (getting
    # ready), which says what was left out.
    if not stages:
        first = routine.stages[0]
        stages = [
            first.model_copy(
                update={
                    "guidance": _prepare_guidance(first, routine, person, routine.position, dropped)
                }
            )
        ]
    return routine.model_copy(update={"stages": stages}), adapted


def _set_up(stage: Stage, person: _Person, position: Position) -> list[Step]:
    """The steps of a stage that set up its position, as this session says them."""
    found = [_step_for(stage, step, person, position) for step in stage.guidance.steps]
    return [step for step in found if step is not None and step.position is not None]


def _with_set_up(
    steps: list[Step],
    position: Position,
    carried: list[Step],
    before: Position | None,
    person: _Person,
) -> list[Step]:
    """A stage's steps, starting with how to set up its position when the stage that
    said so was left out (the feet, where they turn onto their back) or the position
    changes here without a word: the giver is never left to guess that they turn over."""
    if position == before or any(step.position == position for step in steps):
        return steps
    mine = [step for step in carried if step.position == position]
    if not mine and before is not None:
        text = _POSITION_SETUP[position].format(who=person.who)
        mine = [_note(text).model_copy(update={"position": position})]
    return [*mine, *steps]


@dataclass(frozen=True)
class PressureChoice:
    """A hands-on stage's pressure guidance at one level (what a check-in answer moves to)."""

    shown: Pressure  # the stage's pressure at this level, within every cap
    line: str | None  # its pressure line, as adapt() would write it
    steps: tuple[Pressure | None, ...]  # each step's pressure, in the stage's order


@dataclass(frozen=True)
class StagePressure:
    """Where a hands-on stage's pressure starts, and its guidance at each level."""

    start: Pressure  # the person's level for the stage (session_pressure), before any answer
    levels: Mapping[Pressure, PressureChoice]  # soft, medium and firm


def pressure_choices(
    written: Routine,
    adapted: Routine,
    profile: Profile | None,
    today: DayCheck | None = None,
    also: Collection[str] = (),
) -> dict[str, StagePressure]:
    """For each hands-on stage of `adapted` (and those named in `also`), the guidance
    it would have at each level, as if the person had learned that level for it.

    `written` is the routine as its file writes it (whose stages `adapt()` made
    `adapted`); the caps of `profile`'s health and `today`'s answers apply at every
    level exactly as in `adapt()`: a level above a cap shows the cap (`shown`), and a
    step on a capped area or an area of caution keeps its own, lower, pressure. So a
    check-in answer moves between these, and none of them passes a cap.
    """
    who = profile or Profile(name="guest")
    person = _Person(who, plan(who, today), profile is None)
    own = {stage.name: stage for stage in written.stages}
    found: dict[str, StagePressure] = {}
    for stage in adapted.stages:
        first = own.get(stage.name)
        if first is None or _is_prepare(first):
            continue
        if not (_hands_on(first, who) or stage.name in also):
            continue
        position = adapted.position_of(stage)
        levels: dict[Pressure, PressureChoice] = {}
        for level in PRESSURES:
            # A learned level is what the stage's pressure starts from (session_pressure),
            # so every other rule (friction, areas, caps) applies to it as it always does.
            taught = who.model_copy(
                update={"stage_pressure": {**who.stage_pressure, first.name: level}}
            )
            at = _Person(taught, person.plan, person.guest)
            steps = _stage_steps(first, at, position) or []
            levels[level] = PressureChoice(
                shown=at.pressure_on(first, []),
                line=_pressure_line(first, at, steps),
                steps=tuple(step.pressure for step in steps),
            )
        found[stage.name] = StagePressure(start=session_pressure(who, first), levels=levels)
    return found


def _grown(stage: Stage) -> float | None:
    """A focus stage's length: FOCUS_GROWTH more, within the duration bounds."""
    own = stage.duration
    if own is None:
        return None
    low = max(own * MIN_STAGE_FACTOR, MIN_STAGE_MINUTES * 60)
    high = min(own * MAX_STAGE_FACTOR, MAX_STAGE_MINUTES * 60)
    if low > high:
        return own
    return round(min(max(own * FOCUS_GROWTH, low), high), 2)


def learn(
    profile: Profile,
    feedback: Feedback,
    routine: Routine,
    reached: Collection[str] | None = None,
    answered: Mapping[str, Hint] | None = None,
) -> Profile:
    """The profile after this feedback on `routine` (the rule: module docstring).

    `reached`: the stages the session got to (None: all of them). An answer about any
    other stage is not learned: it speaks of something that did not happen.
    `answered`: the words of the session's check-in answers, learned already at its end
    (`learn_checkins`): quoted next time beside the feedback's own, which win.
    Pure: `profile` is left as it was. Raises NotFound for a stage that is not in the
    routine, InvalidInput when the profile would grow past its limits.
    """
    feedback.check(routine)
    words = {n: h for n, h in (answered or {}).items() if n in {s.name for s in routine.stages}}
    if reached is not None:
        feedback = feedback.about(reached)
        words = {name: hint for name, hint in words.items() if name in reached}
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
        last_feedback={**words, **feedback.pressure},
        sessions=profile.sessions + 1,
    )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"the profile {profile.name!r} cannot take this feedback: {exc.errors()[0]['msg']}"
        ) from None


def learn_checkins(
    profile: Profile, routine: Routine, taught: Mapping[str, tuple[Pressure, Hint]]
) -> Profile:
    """The profile after a session's check-in answers, at its end: per stage, the level
    the answer left it at and the answer's word (core/checkins.py says which count).

    Each named stage's learned pressure becomes that level (friction's never above the
    overall pressure), and `last_feedback` becomes these words, quoted next time. The
    overall pressure, the favourite and `sessions` are feedback's (`learn`). Pure; a stage
    the routine does not have is left out.
    """
    names = {stage.name: stage for stage in routine.stages}
    stage_pressure = dict(profile.stage_pressure)
    words: dict[str, Hint] = {}
    for name, (level, hint) in taught.items():
        stage = names.get(name)
        if stage is None:
            continue
        stage_pressure[name] = _at_most(level, profile.pressure) if _is_friction(stage) else level
        words[name] = hint
    if not words:
        return profile
    data = profile.model_dump()
    data.update(stage_pressure=stage_pressure, last_feedback=words)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"the profile {profile.name!r} cannot learn these check-ins: {exc.errors()[0]['msg']}"
        ) from None
