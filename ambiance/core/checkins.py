"""Pressure check-ins: when to ask "more, less or the same?", and what an answer changes.

Pure: no I/O, no clock. The engine (engine.py) keeps a `Checkins` per session, asks the
one that falls due in the stage's own time and takes the answer; the room stores what
`dump()` gives. docs/coaching.md ("Pressure check-ins") says the rules in plain words:

When (`schedule`)
    A stage is hands-on when its steps work a body area with a technique (the first
    such step that is not a still hand), or, without such steps, when its scene or name
    is one (effleurage, petrissage, friction). In the order of the routine:
    1. the first hands-on stage: "early in the first strokes", `FIRST_AFTER` in;
    2. friction (outside the ending): "on a tight spot", `TIGHT_SPOT_AFTER` in;
    3. every other hands-on stage whose technique differs from the hands-on stage
       before it, outside the ending (the closing strokes are light, and say so):
       "a change of technique", `CHANGE_AFTER` in;
    4. fewer than two so far: once more, two thirds into the longest hands-on stage of
       at least `AGAIN_LONGEST` (a routine of one technique is asked twice);
    5. at most `MOST_CHECKINS`: a stage's own check-in (its file's `checkin:`) always
       stays, then the first strokes, the tight spots, the first time each technique
       comes, then the other changes, earliest first.
    A usual time is never more than a third into its stage, and a file's own `after`
    never more than half of it, so a stage shortened to fit the evening (or by a
    person's lengths) still asks early. `checkin: false` leaves a stage out of all of it.
    A routine with no hands-on stage (the quiet room) asks nothing.

What an answer changes (`Checkins.answer`)
    Each hands-on stage has its guidance at each level soft, medium and firm, worked out
    at the start with every cap of the person's health and today's answers
    (profiles.pressure_choices), and a level it is at (`wanted`, starting at theirs).
    softer and too much move the stage and every later hands-on stage one step softer
    (never below soft); firmer moves them one step firmer where that is firmer on the
    skin: never past a cap (the level above shows the same), never for friction past
    their overall pressure, and never for the ending (closing strokes stay as light as
    they started). same changes nothing. The stage's pressure line then says what was
    asked and what to do now; too much starts it with "Ease off now".

What is learned (`Checkins.learned`)
    At the session's end, per stage answered, the level its last answer left it at
    (softer and too much: softer; same: right; firmer: firmer). A firmer that a cap held
    back changed nothing and teaches nothing: the cap, not their taste, kept it there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ambiance.core import fitting
from ambiance.core.areas import AREAS, areas_in_text
from ambiance.core.profiles import (
    PRESSURES,
    DayCheck,
    Hint,
    Pressure,
    PressureChoice,
    Profile,
    StagePressure,
    pressure_choices,
)
from ambiance.core.scenes import MOST_CHECKINS, Guidance, Routine, Stage, Step
from ambiance.errors import Conflict

__all__ = [
    "AGAIN_LONGEST",
    "AGAIN_SHARE",
    "ANSWERS",
    "CHANGE_AFTER",
    "EARLY_SHARE",
    "FEWEST_CHECKINS",
    "FIRST_AFTER",
    "GUIDANCE",
    "LATEST_SHARE",
    "MOST_CHECKINS",
    "PROMPTS",
    "TIGHT_SPOT_AFTER",
    "Answer",
    "Asked",
    "Checkins",
    "Given",
    "Kind",
    "NoCheckin",
    "Planned",
    "dump_pressure",
    "load_pressure",
    "pressure_for",
    "schedule",
    "technique",
]

Answer = Literal["softer", "same", "firmer", "too_much"]
ANSWERS: tuple[Answer, ...] = ("softer", "same", "firmer", "too_much")
Kind = Literal["first", "change", "tight_spot", "again", "own"]

# --- the rules as data -----------------------------------------------------------------

FIRST_AFTER = 60.0  # a minute into the first strokes: the oil spread, the touch settled
CHANGE_AFTER = 45.0  # early in a new technique, once the hands have found its rhythm
TIGHT_SPOT_AFTER = 30.0  # on the spot, once the pressure has sunk in slowly
EARLY_SHARE = 1 / 3  # a usual check-in is never further into its stage than this
LATEST_SHARE = 1 / 2  # nor a file's own `after` in a stage shortened since
AGAIN_LONGEST = 90.0  # seconds: a stage long enough to be asked twice
AGAIN_SHARE = 2 / 3  # ... the second time two thirds into it
FEWEST_CHECKINS = 2

PROMPTS: dict[Kind, str] = {
    "first": "How is the pressure, 1 to 10? More, less or the same?",
    "change": "New strokes now: how is the pressure, 1 to 10? More, less or the same?",
    "tight_spot": "On this tight spot: a good ache, or too much? 1 to 10: more, less or the same?",
    "again": "Still good? How is the pressure now, 1 to 10: more, less or the same?",
    "own": "How is the pressure, 1 to 10? More, less or the same?",
}
# For the giver, with every prompt: the anchored scale, and what to watch for.
GUIDANCE = (
    "Ask it softly and wait for the answer: 5 to 7 is good, 8 or more is too much. Watch "
    "for held breath, tensing or pulling away, and ease off without being asked."
)
_AFTER: dict[Kind, float] = {
    "first": FIRST_AFTER,
    "change": CHANGE_AFTER,
    "tight_spot": TIGHT_SPOT_AFTER,
    "own": CHANGE_AFTER,
}
# Which usual check-ins give way first when there are more than MOST_CHECKINS.
_RANK: dict[Kind, int] = {"own": 0, "first": 1, "tight_spot": 2, "change": 3, "again": 5}
_HANDS_ON = ("effleurage", "petrissage", "friction", "other")
_BY_NAME = {"effleurage": "effleurage", "petrissage": "petrissage", "friction": "friction"}
# Where each level sits on the anchored 1-10 scale (scenes.py: 8 or more is too much).
_SCALE: dict[Pressure, str] = {"soft": "3-4 of 10", "medium": "5-6 of 10", "firm": "7 of 10"}
_MOVE: dict[Answer, int] = {"softer": -1, "too_much": -1, "same": 0, "firmer": 1}
_WORD: dict[Answer, Hint] = {
    "softer": "softer",
    "too_much": "softer",
    "same": "right",
    "firmer": "firmer",
}


class NoCheckin(Conflict):
    """An answer with no check-in open to take it (HTTP 409)."""

    code = "no_checkin_open"


@dataclass(frozen=True)
class Planned:
    """A check-in in the routine's timeline: `at` seconds of its stage's own time."""

    id: str
    stage: str
    at: float
    kind: Kind
    prompt: str


# --- when --------------------------------------------------------------------------------


def _works(step: Step) -> bool:
    """The step works a body area (not an area of caution a plain text warns about)."""
    if step.areas is not None:
        return bool(step.areas)
    return any(not AREAS[a].caution for a in areas_in_text(step.text))


def technique(stage: Stage) -> str | None:
    """The stage's technique as far as pressure goes: that of its first step on the body
    that is not a still hand, else the one its scene or name says; "other" for hands at
    work in a way no step names; None where no hands are at work (rest, getting ready)."""
    working = [step for step in stage.guidance.steps if _works(step)]
    for step in working:
        if step.technique is not None and step.technique != "holding":
            return step.technique
    named = fitting.technique(stage)
    if named == "closing":
        return "effleurage"
    if named in _BY_NAME:
        return _BY_NAME[named]
    if working and all(step.technique == "holding" for step in working):
        return "holding"
    return "other" if working else None


def _at(default: float, stage: Stage, share: float) -> float:
    if stage.duration is None:
        return default
    return round(min(default, stage.duration * share), 1)


def schedule(routine: Routine) -> list[Planned]:
    """The routine's check-ins, in the order they come (the rules: module docstring)."""
    parts = fitting.roles(routine)
    found: list[tuple[int, int, Stage, Kind, float]] = []  # (rank, index, stage, kind, at)
    seen: set[str] = set()
    before: str | None = None
    first = True
    for index, stage in enumerate(routine.stages):
        kind_of = technique(stage)
        own = stage.checkin
        if kind_of not in _HANDS_ON:
            if own is None or not own.ask:
                continue
            kind_of = "other"  # its file asks for one: hands at work we cannot see
        ending = parts.get(stage.name) == "ending"
        kind: Kind | None = None
        rank = 0
        if first:
            kind, rank = "first", _RANK["first"]
        elif kind_of == "friction" and not ending:
            kind, rank = "tight_spot", _RANK["tight_spot"]
        elif kind_of != before and not ending:
            kind = "change"
            rank = _RANK["change"] + (kind_of in seen)
        first, before = False, kind_of
        seen.add(kind_of)
        if own is not None and not own.ask:
            continue
        if own is not None:
            kind = kind or "own"
            rank = _RANK["own"]
        if kind is None:
            continue
        at = _at(_AFTER.get(kind, CHANGE_AFTER), stage, EARLY_SHARE)
        if own is not None and own.after is not None:
            at = _at(own.after, stage, LATEST_SHARE)
        found.append((rank, index, stage, kind, at))
    if len(found) < FEWEST_CHECKINS:
        longest = _longest(routine, parts)
        if longest is not None:
            index, stage = longest
            at = round((stage.duration or 0) * AGAIN_SHARE, 1)
            found.append((_RANK["again"], index, stage, "again", at))
    kept = sorted(found, key=lambda item: (item[0], item[1]))[:MOST_CHECKINS]
    kept.sort(key=lambda item: (item[1], item[4]))
    planned: list[Planned] = []
    for _, _, stage, kind, at in kept:
        own = stage.checkin
        prompt = own.prompt if own is not None and own.prompt else PROMPTS[kind]
        number = sum(1 for p in planned if p.stage == stage.name) + 1
        planned.append(Planned(f"{stage.name}-{number}", stage.name, at, kind, prompt))
    return planned


def _longest(routine: Routine, parts: Mapping[str, str]) -> tuple[int, Stage] | None:
    """The longest timed hands-on stage outside the ending, if long enough to ask twice."""
    best: tuple[int, Stage] | None = None
    for index, stage in enumerate(routine.stages):
        off = stage.checkin is not None and not stage.checkin.ask
        if off or stage.duration is None or stage.duration < AGAIN_LONGEST:
            continue
        if technique(stage) not in _HANDS_ON or parts.get(stage.name) == "ending":
            continue
        if best is None or stage.duration > (best[1].duration or 0):
            best = (index, stage)
    return best


def pressure_for(
    written: Routine, chosen: Routine, profile: Profile | None, today: DayCheck | None
) -> dict[str, StagePressure]:
    """What a check-in answer may move each hands-on stage of `chosen` (the routine as the
    session runs it: adapted, fitted) to, with every cap of `profile`'s health and
    `today`'s answers; `written` is the routine as its file writes it. Worked out again
    whenever the session's routine is adapted again (today's answers given later)."""
    asked = {planned.stage for planned in schedule(chosen)}
    return pressure_choices(written, chosen, profile, today, also=asked)


# --- the state of a session's check-ins --------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """The check-in asked in this visit of its stage: open until answered."""

    id: str
    stage: str
    kind: Kind
    prompt: str
    asked_at: float
    answered: Answer | None = None
    answered_at: float | None = None


@dataclass(frozen=True)
class Given:
    """An answer, kept for the rest of the session and for learning at its end."""

    id: str
    stage: str
    answer: Answer
    at: float
    level: Pressure | None  # the stage's level right after it (None: a stage without)
    held: bool = False  # a firmer that a cap held back: it changed nothing
    moved: tuple[str, ...] = ()  # the stages whose pressure it changed


def dump_pressure(choices: Mapping[str, StagePressure]) -> dict[str, Any]:
    """The stages' pressure choices as JSON (kept with the session's routine)."""
    return {
        name: {
            "start": stage.start,
            "levels": {
                level: {"shown": c.shown, "line": c.line, "steps": list(c.steps)}
                for level, c in stage.levels.items()
            },
        }
        for name, stage in choices.items()
    }


def load_pressure(data: Any) -> dict[str, StagePressure]:
    """Read `dump_pressure()` back; a session stored before check-ins has none."""
    if not isinstance(data, dict):
        return {}
    return {
        name: StagePressure(
            start=stage["start"],
            levels={
                level: PressureChoice(shown=c["shown"], line=c["line"], steps=tuple(c["steps"]))
                for level, c in stage["levels"].items()
            },
        )
        for name, stage in data.items()
    }


def _rank(pressure: Pressure) -> int:
    return PRESSURES.index(pressure)


def _moved(pressure: Pressure, by: int) -> Pressure:
    return PRESSURES[max(0, min(len(PRESSURES) - 1, _rank(pressure) + by))]


def _join(*parts: str | None) -> str | None:
    text = " ".join(part.strip() for part in parts if part and part.strip())
    return text or None


@dataclass
class Checkins:
    """One session's check-ins: what is planned, asked and answered, and each hands-on
    stage's pressure level (what the answers moved it to)."""

    planned: list[Planned]
    pressure: dict[str, StagePressure] = field(default_factory=dict)
    ending: frozenset[str] = frozenset()  # stages of the ending: never made firmer
    wanted: dict[str, Pressure] = field(default_factory=dict)
    given: list[Given] = field(default_factory=list)
    current: Asked | None = None
    asked: set[str] = field(default_factory=set)  # asked (or passed) in this visit

    @classmethod
    def of(cls, routine: Routine, pressure: Mapping[str, StagePressure]) -> Checkins:
        parts = fitting.roles(routine)
        ending = frozenset(name for name, part in parts.items() if part == "ending")
        return cls(schedule(routine), dict(pressure), ending)

    # --- asking ---------------------------------------------------------------------------

    def _answered(self) -> set[str]:
        return {given.id for given in self.given}

    def pending(self, stage: str) -> list[Planned]:
        """The stage's check-ins still to ask in this visit, in order."""
        answered = self._answered()
        return [
            p
            for p in self.planned
            if p.stage == stage and p.id not in answered and p.id not in self.asked
        ]

    def next_at(self, stage: str) -> float | None:
        """Seconds of the stage's own time when its next check-in falls due."""
        pending = self.pending(stage)
        return pending[0].at if pending else None

    def enter(self, stage: str, run: float) -> None:
        """A stage begins, `run` seconds into its own time (a stage set with time already
        gone): the check-ins it passed are not asked. (`leave()` the one before first.)"""
        self.current = None
        self.asked = set()
        self.asked = {p.id for p in self.pending(stage) if p.at < run}

    def leave(self) -> Asked | None:
        """The stage (or the session) ends: an open check-in is dropped, not answered."""
        current, self.current = self.current, None
        self.asked = set()
        return current if current is not None and current.answered is None else None

    def ask_due(self, stage: str, run: float, now: float) -> tuple[Asked | None, Asked | None]:
        """Ask the check-in of `stage` that is due at `run` seconds of its time (the
        latest, if several are: the others are passed). Returns (asked, dropped): an
        unanswered one asked before it in this visit is dropped."""
        due = [p for p in self.pending(stage) if p.at <= run]
        if not due:
            return None, None
        self.asked |= {p.id for p in due}
        planned = due[-1]
        dropped = (
            self.current if self.current is not None and self.current.answered is None else None
        )
        self.current = Asked(planned.id, planned.stage, planned.kind, planned.prompt, now)
        return self.current, dropped

    # --- answering ------------------------------------------------------------------------

    @property
    def open(self) -> Asked | None:
        current = self.current
        return current if current is not None and current.answered is None else None

    def answer(
        self, answer: Answer, now: float, stages: Sequence[Stage], id: str | None = None
    ) -> Given:
        """Take the answer to the open check-in; `stages` are the current stage and those
        after it, whose pressure it moves. NoCheckin when none is open (or not `id`)."""
        current = self.open
        if current is None or (id is not None and id != current.id):
            raise self._refusal(id)
        by = _MOVE[answer]
        moved: list[str] = []
        held = False
        for index, stage in enumerate(stages):
            choices = self.pressure.get(stage.name)
            if choices is None:
                continue
            before = self.wanted.get(stage.name, choices.start)
            after = _moved(before, by)
            if by > 0:
                most = choices.start if stage.name in self.ending else PRESSURES[-1]
                firmer = choices.levels[after].shown != choices.levels[before].shown
                if _rank(after) > _rank(most) or not firmer:
                    after = before
                    held = held or index == 0
            if after != before:
                self.wanted[stage.name] = after
                if choices.levels[after].shown != choices.levels[before].shown:
                    moved.append(stage.name)  # lighter or firmer on the skin
        level = None
        if current.stage in self.pressure:
            level = self.wanted.get(current.stage, self.pressure[current.stage].start)
        given = Given(current.id, current.stage, answer, now, level, held, tuple(moved))
        self.given.append(given)
        self.current = replace(current, answered=answer, answered_at=now)
        return given

    def _refusal(self, id: str | None) -> NoCheckin:
        open_ = self.open
        if open_ is not None:
            return NoCheckin(
                f"check-in {id!r} is not the one open: {open_.id!r} is, in {open_.stage!r}",
                detail={"open": open_.id, "given": id},
            )
        last = self.current
        said = ""
        if id is not None:
            said = f"{id!r} is not open"
        elif last is not None:
            said = f"{last.id!r} was answered ({last.answered})"
        upcoming = [p for p in self.planned if p.id not in self._answered()]
        later = (
            f"; the next is {upcoming[0].id!r}, {round(upcoming[0].at)} s into "
            f"{upcoming[0].stage!r}"
            if upcoming
            else "; none is left in this session"
        )
        return NoCheckin(
            "no check-in is open to answer" + (f" ({said})" if said else "") + later,
            detail={
                "open": None,
                "given": id,
                "next": None
                if not upcoming
                else {"id": upcoming[0].id, "stage": upcoming[0].stage},
            },
        )

    # --- what the giver reads -------------------------------------------------------------

    def guidance(self, stage: Stage) -> Guidance:
        """The stage's guidance as the answers left it: its pressure line (and steps'
        pressure) at the stage's level now, after a line saying what was asked."""
        note = self._note(stage.name)
        guidance = stage.guidance
        choices = self.pressure.get(stage.name)
        if choices is None:
            if note is None:
                return guidance
            return guidance.model_copy(update={"pressure": _join(note, guidance.pressure)})
        level = self.wanted.get(stage.name, choices.start)
        if level == choices.start and note is None:
            return guidance
        line = guidance.pressure
        steps = list(guidance.steps)
        if level != choices.start:
            chosen = choices.levels[level]
            line = chosen.line
            if len(chosen.steps) == len(steps):  # the same steps, as adapt() made them
                steps = [
                    step.model_copy(update={"pressure": pressure})
                    for step, pressure in zip(steps, chosen.steps, strict=True)
                ]
        return guidance.model_copy(update={"pressure": _join(note, line), "steps": steps})

    def shown(self, stage: str) -> Pressure | None:
        """The stage's pressure now (within every cap), if it is a hands-on one."""
        choices = self.pressure.get(stage)
        if choices is None:
            return None
        return choices.levels[self.wanted.get(stage, choices.start)].shown

    def said(self) -> str | None:
        """What to do now, after the answer to the current check-in (None while open)."""
        current = self.current
        if current is None or current.answered is None:
            return None
        given = next((g for g in reversed(self.given) if g.id == current.id), None)
        return None if given is None else self._own_note(given)

    def _note(self, stage: str) -> str | None:
        own = [g for g in self.given if g.stage == stage]
        if own:
            return self._own_note(own[-1])
        carried = [g for g in self.given if stage in g.moved]
        if carried:
            last = carried[-1]
            scale = _SCALE[self.shown(stage) or "soft"]
            if last.answer == "firmer":
                return f"Firmer than planned ({scale}): they asked for firmer earlier."
            if last.answer == "too_much":
                return f"Lighter than planned ({scale}): it was too much earlier."
            return f"Lighter than planned ({scale}): they asked for softer earlier."
        return None

    def _own_note(self, given: Given) -> str:
        """What the answer to a stage's own check-in asks of the giver now."""
        shown = self.shown(given.stage)
        moved = given.stage in given.moved and shown is not None
        scale = _SCALE[shown] if shown is not None else ""
        lightest = shown == "soft" and not moved  # nothing lighter to move to
        if given.answer == "same":
            return "They said the pressure is right: keep it just like this."
        if given.answer == "too_much":
            if moved:
                return (
                    f"Ease off now: it was too much. Lighten at once, to {scale}, keep your "
                    "hands moving slowly and watch their breathing."
                )
            if lightest:
                return (
                    "Ease off now: it was too much. Go as light as you can, slowly, or leave "
                    "this part out and finish it with long, gentle strokes."
                )
            return (
                "Ease off now: it was too much. Lighten at once, keep your hands moving "
                "slowly and watch their breathing."
            )
        if given.answer == "softer":
            if moved:
                return f"They asked for softer: lighten a step, to {scale}."
            if lightest:
                return "They asked for softer: this is the lightest here, so go lighter and slower."
            return "They asked for softer: go a little lighter."
        if given.held:
            return (
                "They asked for firmer, but this is the most for them here: keep it there and "
                "go slower instead."
            )
        to = f", to {scale}" if moved else ""
        return (
            f"They asked for firmer: a step firmer{to}, leaning in with your body weight "
            "rather than pushing with your thumbs."
        )

    # --- learning ---------------------------------------------------------------------

    def learned(self) -> dict[str, tuple[Pressure, Hint]]:
        """Per stage answered: the level its last answer left it at, and that answer's word
        (a firmer a cap held back, or a stage with no level, teaches nothing)."""
        found: dict[str, tuple[Pressure, Hint]] = {}
        for given in self.given:
            if given.held or given.level is None:
                continue
            found[given.stage] = (given.level, _WORD[given.answer])
        return found

    def words(self) -> dict[str, Hint]:
        return {stage: hint for stage, (_, hint) in self.learned().items()}

    # --- keeping it -------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The state that changes (what is planned follows from the routine)."""
        current = self.current
        return {
            "wanted": dict(self.wanted),
            "given": [
                {
                    "id": g.id,
                    "stage": g.stage,
                    "answer": g.answer,
                    "at": g.at,
                    "level": g.level,
                    "held": g.held,
                    "moved": list(g.moved),
                }
                for g in self.given
            ],
            "current": None
            if current is None
            else {
                "id": current.id,
                "stage": current.stage,
                "kind": current.kind,
                "prompt": current.prompt,
                "asked_at": current.asked_at,
                "answered": current.answered,
                "answered_at": current.answered_at,
            },
            "asked": sorted(self.asked),
        }

    def load(self, data: Any) -> None:
        """Take back what `dump()` gave (nothing for a session stored before check-ins)."""
        if not isinstance(data, dict):
            return
        self.wanted = dict(data.get("wanted") or {})
        self.given = [
            Given(
                id=g["id"],
                stage=g["stage"],
                answer=g["answer"],
                at=float(g["at"]),
                level=g.get("level"),
                held=bool(g.get("held", False)),
                moved=tuple(g.get("moved") or ()),
            )
            for g in data.get("given") or ()
        ]
        current = data.get("current")
        self.current = None if not current else Asked(**current)
        self.asked = set(data.get("asked") or ())
