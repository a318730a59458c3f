"""A session's routine, shaped: adapted to whom it is for and to today's answers, then
fitted to the time there is.

One function for the two moments it happens: the start (`Room.start_spa`) and today's
answers given while getting ready (`Room.answer_today`), so that answers given then
shape the session exactly as they would have at the start. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ambiance.core.checkins import pressure_for, technique
from ambiance.core.fitting import Fitted, fit, reach
from ambiance.core.profiles import DayCheck, Profile, StagePressure, adapt
from ambiance.core.scenes import Routine, Scene, Step
from ambiance.errors import Conflict

__all__ = ["NothingLeft", "Shaped", "shape"]


class NothingLeft(Conflict):
    """Every hands-on stage of the routine works an area left out for this person (HTTP
    409): a legs routine for someone with varicose veins in the legs. Starting it would
    be a massage with no massage in it; another routine would do."""

    code = "nothing_left_to_do"


@dataclass(frozen=True)
class Shaped:
    routine: Routine
    scenes: dict[str, Scene]  # adapted to the profile; empty: the library's own
    fitted: Fitted | None
    # What a check-in answer may move each hands-on stage's pressure to, worked out with
    # every cap of the person's health and today's answers (which are then kept nowhere).
    pressure: dict[str, StagePressure]


def shape(
    written: Routine,
    scenes: Mapping[str, Scene],
    profile: Profile | None,
    today: DayCheck | None,
    minutes: float | None,
    *,
    nearest: bool = False,
) -> Shaped:
    """`written` (the routine as its file writes it) for this session: adapted to
    `profile` and `today` (profiles.adapt: raises NotToday for a stop sign), then, with
    `minutes`, fitted to that length (the person's own lengths first).

    `nearest`: when the adapted routine cannot take `minutes` (today's answers left
    stages out), fit it to the nearest length it can take and say so while getting
    ready, rather than refuse: the answers must always be taken. Without it, fitting
    raises InvalidInput naming the shortest and longest possible (at the start, the
    person can ask for another length).
    """
    routine, adapted = written, dict[str, Scene]()
    if profile is not None or today is not None:
        # Today's answers are used here and kept nowhere: the adapted routine says what
        # they changed (the command log and the state leave them out).
        routine, adapted = adapt(written, scenes, profile, today)
        if _hands_on(written) and not _hands_on(routine):
            raise NothingLeft(
                f"nothing of the routine {written.name!r} is left: every stage of it works "
                "an area left out for this person (their health, today's answers or the "
                "areas they avoid); choose another routine",
                detail={"routine": written.name},
            )
    if minutes is None:
        return _shaped(written, routine, adapted, None, profile, today)
    asked = minutes
    if nearest:
        if not any(stage.timed for stage in routine.stages):
            return _shaped(written, routine, adapted, None, profile, today)  # nothing to time
        found = reach(routine, written=written)
        minutes = min(max(minutes, found.shortest), found.longest)
    fitted = Fitted.before(routine, minutes, asked)
    routine = fit(routine, minutes, written=written)
    if fitted.asked is not None:
        routine = _say_length(routine, fitted)
    return _shaped(written, routine, adapted, fitted, profile, today)


def _hands_on(routine: Routine) -> bool:
    return any(technique(stage) is not None for stage in routine.stages)


def _shaped(
    written: Routine,
    routine: Routine,
    scenes: dict[str, Scene],
    fitted: Fitted | None,
    profile: Profile | None,
    today: DayCheck | None,
) -> Shaped:
    return Shaped(routine, scenes, fitted, pressure_for(written, routine, profile, today))


def _say_length(routine: Routine, fitted: Fitted) -> Routine:
    """Getting ready says that the massage is not the length asked for, and why."""
    why = (
        "what is left out takes its time with it"
        if fitted.minutes < fitted.wanted
        else "it cannot be made shorter"
    )
    text = (
        f"With today's answers this massage takes {fitted.minutes:g} minutes, not the "
        f"{fitted.wanted:g} asked for: {why}."
    )
    first = routine.stages[0]
    steps = [Step(text=text, areas=[]), *first.guidance.steps]
    guidance = first.guidance.model_copy(update={"steps": steps})
    stages = [first.model_copy(update={"guidance": guidance}), *routine.stages[1:]]
    return routine.model_copy(update={"stages": stages})
