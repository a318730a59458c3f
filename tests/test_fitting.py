"""Fitting a routine to the time you have: over every built-in routine and a grid of
lengths from the shortest possible to 90 minutes, the total, the shape and the limits."""

from __future__ import annotations

import math

import pytest

from ambiance.core.engine import Session
from ambiance.core.fitting import (
    MAX_MINUTES,
    MINIMUM_MINUTES,
    OTHER_MINIMUM_MINUTES,
    Fitted,
    fit,
    reach,
    roles,
    technique,
    unfitted,
)
from ambiance.core.profiles import (
    MAX_STAGE_FACTOR,
    MAX_STAGE_MINUTES,
    ROOM_ONLY_ROUTINE,
    Profile,
    adapt,
)
from ambiance.core.scenes import (
    Guidance,
    Library,
    Routine,
    Stage,
    builtin_scenes_dir,
    load_library,
)
from ambiance.errors import InvalidInput
from ambiance.infra.clock import FakeClock

LIBRARY: Library = load_library([builtin_scenes_dir()])
ROUTINES = sorted(LIBRARY.routines)
# The massages: the quiet room (the room without a massage, for a day with a stop sign) is
# fitted like any routine, but has no warm-up, kneading or closing strokes to keep in shape.
MASSAGES = [name for name in ROUTINES if name != ROOM_ONLY_ROUTINE]
# Every fitted total is this close to the length asked for (in seconds): to the second,
# and 3 s more at the very edges, where a bound shown to a tenth of a minute is taken.
CLOSE = 3.0


def floor_of(stage: Stage) -> float:
    """Rule 3 as the docs say it: the technique's minimum, at most the stage's own length."""
    assert stage.duration is not None
    name = technique(stage)
    minimum = MINIMUM_MINUTES[name] if name is not None else OTHER_MINIMUM_MINUTES
    return min(minimum * 60, stage.duration)


def ceiling_of(stage: Stage) -> float:
    assert stage.duration is not None
    return max(stage.duration, min(stage.duration * MAX_STAGE_FACTOR, MAX_STAGE_MINUTES * 60))


def timed(routine: Routine) -> dict[str, float]:
    return {s.name: s.duration for s in routine.stages if s.duration is not None}


def grid(routine: Routine) -> list[float]:
    """The edges, the routine's own length and every 5 minutes up to 90 that it can take."""
    found = reach(routine)
    lengths = {found.shortest, found.longest, found.own, found.shortest + 0.5}
    lengths |= {float(m) for m in range(5, int(MAX_MINUTES) + 1, 5)}
    return sorted(m for m in lengths if found.shortest <= m <= found.longest)


SHRINKABLE = [
    n
    for n in ROUTINES
    if reach(LIBRARY.routine(n)).shortest < LIBRARY.routine(n).total_duration / 60
]
STRETCHABLE = [
    n
    for n in MASSAGES
    if reach(LIBRARY.routine(n)).longest > LIBRARY.routine(n).total_duration / 60
]
CASES = [(name, minutes) for name in ROUTINES for minutes in grid(LIBRARY.routine(name))]


def test_every_built_in_massage_can_be_fitted_and_has_a_warm_up_and_an_ending() -> None:
    for name in MASSAGES:
        routine = LIBRARY.routine(name)
        parts = roles(routine)
        names = list(timed(routine))
        assert parts[names[0]] == "warm-up", name  # each opens with effleurage
        assert technique(routine.stage(names[0])) == "effleurage", name
        assert parts[names[-1]] == "ending", name
        assert "middle" in parts.values(), name
        found = reach(routine)
        assert found.shortest <= found.own <= found.longest, name


@pytest.mark.parametrize("name", ROUTINES)
def test_the_reach_is_every_stage_at_its_floor_and_at_its_ceiling(name: str) -> None:
    routine = LIBRARY.routine(name)
    stages = [s for s in routine.stages if s.timed]
    found = reach(routine)
    assert found.shortest == round(sum(math.ceil(floor_of(s)) for s in stages) / 60, 1)
    longest = min(sum(math.floor(ceiling_of(s)) for s in stages), MAX_MINUTES * 60)
    assert found.longest == round(longest / 60, 1)
    assert found.longest <= MAX_MINUTES
    assert found.own == round(routine.total_duration / 60, 1)


@pytest.mark.parametrize(("name", "minutes"), CASES, ids=[f"{n}-{m:g}" for n, m in CASES])
def test_a_fitted_routine_is_that_long_and_keeps_its_shape_and_limits(
    name: str, minutes: float
) -> None:
    routine = LIBRARY.routine(name)
    fitted = fit(routine, minutes)
    assert abs(fitted.total_duration - minutes * 60) <= CLOSE
    # The same stages in the same order: warm-up first, the closing strokes last; the
    # untimed ones untimed, and nothing but the lengths changed.
    assert [s.name for s in fitted.stages] == [s.name for s in routine.stages]
    assert roles(fitted) == roles(routine)
    for before, after in zip(routine.stages, fitted.stages, strict=True):
        assert after.model_copy(update={"duration": before.duration}) == before
        if before.duration is None:
            assert after.duration is None
            continue
        assert after.duration is not None
        assert after.duration == int(after.duration)  # whole seconds
        assert floor_of(before) <= after.duration <= ceiling_of(before), before.name


@pytest.mark.parametrize("name", ROUTINES)
def test_fitting_to_its_own_length_changes_nothing(name: str) -> None:
    routine = LIBRARY.routine(name)
    assert timed(fit(routine, routine.total_duration / 60)) == timed(routine)


def spare_kept(routine: Routine, fitted: Routine) -> dict[str, float]:
    """Per stage, the share of its time above its floor that it kept (1 when it has none)."""
    kept = {}
    for stage in routine.stages:
        if stage.duration is None:
            continue
        spare = stage.duration - floor_of(stage)
        after = fitted.stage(stage.name).duration
        assert after is not None
        kept[stage.name] = 1.0 if spare < 1 else (after - floor_of(stage)) / spare
    return kept


@pytest.mark.parametrize("name", SHRINKABLE)
def test_shrinking_takes_from_the_middle_first(name: str) -> None:
    routine = LIBRARY.routine(name)
    parts = roles(routine)
    found = reach(routine)
    shorter = [m for m in grid(routine) if m < found.own]
    previous: dict[str, float] | None = None
    for minutes in shorter:
        fitted = fit(routine, minutes)
        kept = spare_kept(routine, fitted)
        middle = [kept[s] for s, part in parts.items() if part == "middle" and kept[s] < 1]
        ends = [kept[s] for s, part in parts.items() if part != "middle"]
        # Every middle stage gave up a larger share of its spare time than any end did
        # (a second of rounding either way).
        for share in middle:
            assert all(share <= end + 0.02 for end in ends), (minutes, kept)
        # A longer request never makes a stage shorter.
        if previous is not None:
            assert all(timed(fitted)[s] >= previous[s] - 1 for s in parts), minutes
        previous = timed(fitted)


@pytest.mark.parametrize("name", STRETCHABLE)
def test_stretching_gives_the_kneading_most_of_the_extra(name: str) -> None:
    routine = LIBRARY.routine(name)
    parts = roles(routine)
    own = timed(routine)
    longer = [m for m in grid(routine) if m > reach(routine).own]
    kneading = [s for s, part in parts.items() if part == "middle" and s != "friction"]
    assert kneading
    for minutes in longer:
        after = timed(fit(routine, minutes))
        growth = {s: after[s] / own[s] - 1 for s in parts}
        for stage in kneading:
            assert all(growth[stage] >= growth[other] - 0.01 for other in parts), growth
        # Until the kneading is at its ceiling, it has most of the extra.
        if all(after[s] < ceiling_of(routine.stage(s)) for s in kneading):
            extra = {s: after[s] - own[s] for s in parts}
            assert sum(extra[s] for s in kneading) > sum(extra.values()) / 2, extra


@pytest.mark.parametrize("name", ROUTINES)
def test_a_length_too_short_or_too_long_names_the_shortest_and_longest(name: str) -> None:
    routine = LIBRARY.routine(name)
    found = reach(routine)
    with pytest.raises(InvalidInput) as short:
        fit(routine, found.shortest - 0.5)
    assert f"the shortest possible is {found.shortest:g} minutes" in short.value.message
    assert f"it can take {found.shortest:g} to {found.longest:g} minutes" in short.value.message
    assert short.value.detail == {
        "routine": name,
        "minutes": found.shortest - 0.5,
        "shortest": found.shortest,
        "longest": found.longest,
    }
    with pytest.raises(InvalidInput) as long:
        fit(routine, max(found.longest + 0.5, MAX_MINUTES + 0.5))
    assert f"the longest possible is {found.longest:g} minutes" in long.value.message


def test_the_bounds_as_shown_are_accepted_even_when_rounded() -> None:
    # 2 min 56 s at their floors, shown as 2.9 minutes, and 5 min 52 s at their
    # ceilings, shown as 5.9: both are accepted as the bound they show.
    guidance = Guidance(summary="x")
    routine = Routine(
        name="odd",
        stages=[
            Stage(name="effleurage", scene="effleurage", duration=88, guidance=guidance),
            Stage(name="closing", scene="closing", duration=88, guidance=guidance),
        ],
    )
    found = reach(routine)
    assert (found.shortest, found.longest) == (2.9, 5.9)
    assert fit(routine, 2.9).total_duration == 176
    assert fit(routine, 5.9).total_duration == 352
    with pytest.raises(InvalidInput, match=r"shortest possible is 2\.9 minutes"):
        fit(routine, 2.8)


def test_nothing_to_fit_and_nonsense_lengths_are_refused() -> None:
    guidance = Guidance(summary="x")
    untimed = Routine(
        name="waits", stages=[Stage(name="prepare", scene="p", duration=None, guidance=guidance)]
    )
    with pytest.raises(InvalidInput, match="no timed stages"):
        fit(untimed, 20)
    for minutes in (0, -5, math.nan, math.inf):
        with pytest.raises(InvalidInput, match="minutes must be a number above 0"):
            fit(LIBRARY.routine("classic"), minutes)


def test_the_persons_lengths_come_first_then_the_whole_is_fitted() -> None:
    classic = LIBRARY.routine("classic")
    likes_kneading = Profile(name="sam", stage_minutes={"petrissage": 25, "friction": 3})
    adapted, _ = adapt(classic, LIBRARY.scenes, likes_kneading)
    plain = fit(classic, 30)
    theirs = fit(adapted, 30, written=classic)
    assert theirs.total_duration == plain.total_duration == 30 * 60
    # Their longer kneading and shorter friction keep their proportions within the 30 minutes.
    assert timed(theirs)["petrissage"] > timed(plain)["petrissage"]
    assert timed(theirs)["friction"] < timed(plain)["friction"]
    # The limits are the written routine's: stretched to the most, no stage is past twice
    # the routine's own length, whatever the person's lengths.
    longest = fit(adapted, reach(classic).longest, written=classic)
    for stage in classic.stages:
        if stage.duration is not None:
            assert timed(longest)[stage.name] <= ceiling_of(stage)
    assert reach(classic) == reach(classic)  # what is possible does not depend on them


def test_a_fitted_session_keeps_its_lengths_and_the_persons_over_a_restart() -> None:
    classic = LIBRARY.routine("classic")
    fitted = Fitted.before(classic, 20)
    clock = FakeClock()
    session = Session(fit(classic, 20), clock, fitted=fitted)
    session.start()
    view = session.view()
    assert view.minutes == 20
    assert view.total_duration == 20 * 60
    assert view.durations == [s.duration for s in session.routine.stages]
    assert sum(d or 0 for d in view.durations) == 20 * 60
    again = Session.from_record(session.record(), clock)
    assert again.fitted == fitted
    assert again.view() == view
    assert timed(unfitted(again.routine, again.fitted)) == timed(classic)
    # A session that was not fitted says so, and its record has nothing more.
    plain = Session(classic, clock)
    assert plain.view().minutes is None
    assert "fitted" not in plain.record()["routine_data"]
    assert Session.from_record(plain.record(), clock).fitted is None
