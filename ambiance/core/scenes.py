"""Scenes and routines: the models, and loading them from YAML folders.

A folder holds any number of `*.yaml` files; each may define `scenes:` and `routines:`
(mappings from a name to its definition). Folders are read in order and a later folder
overrides a name from an earlier one, so a user's folder can replace a built-in scene.
Loading checks everything and reports every problem at once, each naming the file, the
field and what is wrong, never a traceback.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ambiance.core.areas import AREAS, AreaId
from ambiance.devices.lights.base import LightTarget
from ambiance.errors import ConfigError, NotFound, brief, clip
from ambiance.infra import yamlfile
from ambiance.infra.files import KiB

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NUMBER = r"(\d+(?:\.\d+)?)"
# A file of scenes and routines written by hand: the built-in ones are under 16 KiB; a
# bigger collection is split over several files of the folder.
SCENE_FILE_MAX_BYTES = 256 * KiB
_DURATION = re.compile(rf"^\s*(?:{_NUMBER}\s*h)?\s*(?:{_NUMBER}\s*m)?\s*(?:{_NUMBER}\s*s)?\s*$")


def builtin_scenes_dir() -> Path:
    """Return the scenes shipped with ambiance (in a wheel, or at the top of the repo)."""
    package = Path(__file__).resolve().parents[1]  # ambiance/
    packaged = package / "builtin_scenes"
    if packaged.is_dir():
        return packaged
    return package.parent / "scenes"


def parse_duration(value: Any) -> float | None:
    """Parse `300`, `"5m"`, `"1m30s"` or `"1h"` to seconds; None or "untimed" is untimed."""
    if value is None or value == "untimed":
        return None
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like '5m' or '90s'")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        value = float(value)  # "90" means seconds, as 90 does
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError("a duration must be at most 24 hours") from None
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not value.strip() or not match or not any(match.groups()):
            raise ValueError(
                f"{brief(value)} is not a duration: write seconds, or e.g. '5m', '1m30s'"
            )
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError("a duration is a number of seconds or a text like '5m' or '90s'")
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 24 * 3600:
        raise ValueError("a duration must be more than 0 seconds and at most 24 hours")
    return seconds


def _on_off(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as False already; accept the quoted words too.
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower() == "on"
    return value


class _Model(BaseModel):
    # Unknown keys are errors: a typo ("brightnes") must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LightsSpec(_Model):
    """How the room's lights should look: one setting for all of them."""

    on: bool = True
    kelvin: int | None = Field(
        default=None, ge=1500, le=6500, description="Colour temperature; 2200 K is candle-warm."
    )
    brightness: float = Field(default=100, ge=0, le=100, description="Percent; 0 switches off.")
    transition: float = Field(default=2, ge=0, le=6553.5, description="Fade time in seconds.")

    def target(self) -> LightTarget:
        on = self.on and self.brightness > 0
        return LightTarget(
            on=on, brightness=self.brightness, kelvin=self.kelvin, transition=self.transition
        )


class MusicSpec(_Model):
    """What should play (acted on by the music backends)."""

    playlist: str | None = None
    tracks: list[str] = Field(default_factory=list)
    volume: float = Field(default=30, ge=0, le=100, description="Percent.")
    fade: float = Field(default=3, ge=0, le=120, description="Seconds to fade the volume.")
    crossfade: float = Field(default=0, ge=0, le=60, description="Seconds between tracks.")
    stop: bool = False
    by_tempo: dict[Annotated[int, Field(ge=10, le=200)], str] = Field(
        default_factory=dict,
        description="Playlists by strokes per minute: the one nearest the stage's tempo "
        "plays (`playlist` when the stage has none).",
    )

    @model_validator(mode="after")
    def _something_to_play(self) -> MusicSpec:
        if not self.stop and not self.playlist and not self.tracks and not self.by_tempo:
            raise ValueError("music needs a playlist, a list of tracks, or `stop: true`")
        return self

    def playlist_for(self, tempo: int | None) -> str | None:
        """The playlist for a stage's tempo: the `by_tempo` entry nearest to it."""
        if tempo is None or not self.by_tempo:
            return self.playlist or (None if self.tracks else self._slowest())
        nearest = min(self.by_tempo, key=lambda bpm: (abs(bpm - tempo), bpm))
        return self.by_tempo[nearest]

    def _slowest(self) -> str | None:
        return self.by_tempo[min(self.by_tempo)] if self.by_tempo else None


class Scene(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str = ""
    lights: LightsSpec
    music: MusicSpec | None = None
    dnd: bool | None = Field(default=None, description="Phones on do-not-disturb.")
    distractions: Annotated[bool | None, BeforeValidator(_on_off)] = Field(
        default=None, description="`off` switches the room's distractions off."
    )


Pressure = Literal["soft", "medium", "firm"]
PRESSURES: tuple[Pressure, ...] = ("soft", "medium", "firm")
Position = Literal["face_down", "side_lying", "seated", "face_up"]
POSITIONS: tuple[Position, ...] = ("face_down", "side_lying", "seated", "face_up")
Technique = Literal["effleurage", "petrissage", "friction", "holding"]
MOST_CHECKINS = 4  # pressure check-ins in a routine: two to four (core/checkins.py)


def _seconds(value: float) -> str:
    minutes, seconds = divmod(round(value), 60)
    if not minutes:
        return f"{seconds}s"
    return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"


# The anchored 1-10 scale as the three words: 1-4 soft (3-4 is a soft touch, 1-2 barely
# touching), 5-6 medium, 7 firm but good. 8 or more makes people hold their breath, tense
# or flinch: too much for any step to ask for.
MOST_ON_THE_SCALE = 7


def _scale(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
        return value  # a word, or refused as not a pressure
    if value > MOST_ON_THE_SCALE:
        raise ValueError(
            f"{value} on the 1-10 scale is too much (people hold their breath or tense at 8 "
            f"or more): at most {MOST_ON_THE_SCALE}, or soft, medium or firm"
        )
    return "soft" if value <= 4 else "medium" if value <= 6 else "firm"


def _step(value: Any) -> Any:
    # A plain string is a step that names no area (kept for files written before steps
    # named their areas): `areas` then stays None, "not said".
    return {"text": value} if isinstance(value, str) else value


class Step(_Model):
    """One instruction: what to do, on which body areas, how firmly, with what technique.

    `areas: []` says the step touches no body area (setting up, oil, covering them);
    left out (a plain-text step) it is not said, and the session reads the text for area
    names instead (`areas.areas_in_text`). An area of caution may be named only for a
    soft glide or a still hand. `position` marks a step that sets up that position: a
    session in another position says how to set up that one instead. `focus` is set when
    a session adapts the routine: the step works an area the receiver wants more time on.
    """

    text: str = Field(min_length=1, max_length=1000)
    areas: list[AreaId] | None = Field(default=None, max_length=len(AREAS))
    pressure: Annotated[Pressure | None, BeforeValidator(_scale)] = Field(
        default=None,
        description="The most this step asks for: soft, medium or firm, or 1-7 on the "
        "1-10 scale (1-4 soft, 5-6 medium, 7 firm).",
    )
    technique: Technique | None = None
    position: Position | None = None
    focus: bool = False

    @model_validator(mode="after")
    def _caution_only_soft(self) -> Step:
        caution = [a for a in self.areas or () if AREAS[a].caution]
        if caution and (self.pressure != "soft" or self.technique in ("petrissage", "friction")):
            names = ", ".join(AREAS[a].name for a in caution)
            raise ValueError(
                f"{names}: an area of caution takes only a soft glide or a still hand "
                "(pressure: soft, technique effleurage or holding)"
            )
        return self

    @property
    def named(self) -> bool:
        return self.areas is not None


class Guidance(_Model):
    """Plain words for a beginner: what the technique is, how, and when to ask."""

    summary: str = Field(min_length=1)
    steps: list[Annotated[Step, BeforeValidator(_step)]] = Field(default_factory=list)
    pressure: str | None = None
    caution: str | None = None

    @property
    def texts(self) -> list[str]:
        return [step.text for step in self.steps]


def _checkin(value: Any) -> Any:
    # `checkin: true` is one here, as usual; `checkin: false` none in this stage.
    if isinstance(value, bool):
        return {"ask": value}
    if value is not None and not isinstance(value, dict | CheckinSpec):
        raise ValueError(
            "write false (no check-in in this stage), true (one here) or {after: 60s, prompt: ...}"
        )
    return value


class CheckinSpec(_Model):
    """A stage's own pressure check-in, written in its file (`checkin: {after: 60s}`):
    when to ask, in the stage's own time, and what; either may be left out for the
    usual (core/checkins.py). `checkin: false` is `ask: false`: none in this stage."""

    ask: bool = Field(default=True, description="false: no check-in in this stage.")
    after: Annotated[float | None, BeforeValidator(parse_duration)] = Field(
        default=None,
        description="Seconds into the stage (its time actually run), or a text like '1m'.",
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="What to ask, aloud: short, with the 1-10 scale.",
    )

    @model_validator(mode="after")
    def _nothing_to_ask(self) -> CheckinSpec:
        if not self.ask and (self.after is not None or self.prompt is not None):
            raise ValueError("a stage without a check-in (ask: false) takes no after or prompt")
        return self


class Stage(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    scene: str
    duration: Annotated[float | None, BeforeValidator(parse_duration)] = Field(
        description="Seconds, or a text like '5m'; null means untimed (waits for the giver)."
    )
    tempo: int | None = Field(
        default=None, ge=10, le=200, description="Strokes per minute, to pace the hands."
    )
    position: Position | None = Field(
        default=None, description="How the receiver lies or sits; the routine's if left out."
    )
    guidance: Guidance
    checkin: Annotated[CheckinSpec | None, BeforeValidator(_checkin)] = Field(
        default=None,
        description="A pressure check-in here: left out, the routine's usual ones "
        "(core/checkins.py); `false`: none in this stage; `true` or `{after, prompt}`: "
        "one here, at `after` into the stage.",
    )

    @field_validator("checkin")
    @classmethod
    def _checkin_within(cls, checkin: CheckinSpec | None, info: ValidationInfo) -> Any:
        after = checkin.after if checkin is not None else None
        duration = info.data.get("duration")
        if after is not None and duration is not None and after >= duration:
            raise ValueError(
                f"after: {_seconds(after)} is not within the stage ({_seconds(duration)} "
                "long): a check-in comes early in the stage, while there is time to act on it"
            )
        return checkin

    @property
    def timed(self) -> bool:
        return self.duration is not None


class Routine(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    title: str = ""
    description: str = ""
    restore_transition: float = Field(
        default=10, ge=0, le=600, description="Seconds to fade the room back at the end."
    )
    position: Position = Field(
        default="face_down", description="How the receiver lies or sits, unless a stage says."
    )
    stages: list[Stage] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages: list[Stage]) -> list[Stage]:
        seen: set[str] = set()
        for stage in stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} is used twice")
            seen.add(stage.name)
        own = [s.name for s in stages if s.checkin is not None and s.checkin.ask]
        if len(own) > MOST_CHECKINS:
            raise ValueError(
                f"{len(own)} stages ask for a check-in ({', '.join(own)}): at most "
                f"{MOST_CHECKINS} in a routine; asked more often, pressure stops being a "
                "conversation and becomes an interruption"
            )
        return stages

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise NotFound("stage", name, known=[s.name for s in self.stages])

    def position_of(self, stage: Stage) -> Position:
        return stage.position or self.position

    @property
    def total_duration(self) -> float:
        return sum(s.duration or 0 for s in self.stages)


@dataclass
class Library:
    """Every scene and routine that was loaded, by name."""

    scenes: dict[str, Scene] = field(default_factory=dict)
    routines: dict[str, Routine] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # "scene:x" -> file it came from

    def scene(self, name: str) -> Scene:
        try:
            return self.scenes[name]
        except KeyError:
            raise NotFound("scene", name, known=list(self.scenes)) from None

    def routine(self, name: str) -> Routine:
        try:
            return self.routines[name]
        except KeyError:
            raise NotFound("routine", name, known=list(self.routines)) from None


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = clip(str(part))  # a name from the file may be any length
            out += f".{part}" if out else part
    return out


def _describe(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (check its spelling)"
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"])
    # pydantic prefixes messages of custom validators; the user needs only the sentence.
    return message.removeprefix("Value error, ")


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = yamlfile.load(path, SCENE_FILE_MAX_BYTES, "a scenes file")
    except yamlfile.YamlError as exc:
        problems.append(str(exc))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: the file must be a mapping with `scenes:` and/or `routines:`")
        return None
    unknown = sorted(clip(str(k)) for k in data if k not in ("scenes", "routines"))
    if unknown:
        problems.append(
            f"{path}: {', '.join(unknown)}: unknown top-level key (expected `scenes` or `routines`)"
        )
    return data


def _validate(
    model: type[_Model], kind: str, name: Any, body: Any, path: Path, problems: list[str]
) -> Any:
    where = _where([f"{kind}s", str(name)])
    if not isinstance(body, dict):
        problems.append(f"{path}: {where}: must be a mapping of fields")
        return None
    if "name" in body:
        problems.append(f"{path}: {where}.name: the name is the key above; leave `name:` out")
        return None
    try:
        return model.model_validate({**body, "name": name})
    except ValidationError as exc:
        # Without the input: pydantic would carry (and a repr would print) the whole value.
        for error in exc.errors(include_input=False, include_url=False):
            field_path = _where([kind + "s", str(name), *error["loc"]])
            problems.append(f"{path}: {field_path}: {_describe(error)}")
        return None


def warnings(library: Library) -> list[str]:
    """What loads but deserves a look: a step that does not name its body areas.

    Such a step (a plain text) is read for area names when a session leaves areas out,
    and left out whole if it names one; named areas let it be rewritten instead.
    """
    found = []
    for routine in library.routines.values():
        path = library.sources.get(f"routine:{routine.name}", "?")
        for i, stage in enumerate(routine.stages):
            for j, step in enumerate(stage.guidance.steps):
                if not step.named:
                    found.append(
                        f"{path}: routines.{routine.name}.stages[{i}].guidance.steps[{j}]: "
                        "names no body area: write it as {text: ..., areas: [...]} "
                        "(areas: [] when it touches no one) so a session can leave out "
                        "what the receiver avoids"
                    )
    return found


def load_library(folders: Iterable[Path]) -> Library:
    """Load every YAML file of `folders` (later folders override); raise ConfigError."""
    library = Library()
    problems: list[str] = []
    broken: set[str] = set()  # defined but invalid: already reported, not "unknown"
    for given in folders:
        try:
            folder = Path(given).expanduser()
        except RuntimeError:  # `~someone/...` for a user this machine does not know
            problems.append(f"{given}: scenes folder does not exist (no such user's home)")
            continue
        if not folder.is_dir():
            problems.append(f"{folder}: scenes folder does not exist")
            continue
        defined_here: dict[str, Path] = {}
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            data = _read_yaml(path, problems)
            if data is None:
                continue
            for kind, model in (("scene", Scene), ("routine", Routine)):
                section = data.get(kind + "s")
                if section is None:
                    continue
                if not isinstance(section, dict):
                    problems.append(f"{path}: {kind}s: must be a mapping from a name to a {kind}")
                    continue
                for name, body in section.items():
                    key = f"{kind}:{name}"
                    if key in defined_here:
                        where = _where([kind + "s", str(name)])
                        problems.append(f"{path}: {where}: already defined in {defined_here[key]}")
                        continue
                    item = _validate(model, kind, name, body, path, problems)
                    if item is None:
                        broken.add(key)
                        continue
                    defined_here[key] = path
                    if key in library.sources:
                        log.info(
                            "%s %r from %s overrides %s", kind, name, path, library.sources[key]
                        )
                    getattr(library, kind + "s")[name] = item
                    library.sources[key] = path
    # Cross-references: every stage's scene must exist once everything is loaded.
    for routine in library.routines.values():
        for index, stage in enumerate(routine.stages):
            if stage.scene not in library.scenes and f"scene:{stage.scene}" not in broken:
                path = library.sources[f"routine:{routine.name}"]
                problems.append(
                    f"{path}: routines.{routine.name}.stages[{index}].scene: "
                    f"unknown scene {brief(stage.scene)}"
                )
    if problems:
        raise ConfigError(problems)
    return library
