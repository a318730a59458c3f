"""The whole shaping of a session (core/shaping.py: adapt to the person and today's
answers, then fit to the time there is) over every built-in massage and a grid of
profiles and lengths: the safety rules of adapt() hold in a fitted routine too, and the
fitting keeps its promises for an adapted one.

tests/test_areas.py checks adapt() alone and tests/test_fitting.py fit() alone; this grid
checks that neither undoes the other: fitting never brings back a step on an avoided
area, never lengthens a stage past what is allowed, never turns side-lying face down.
"""

from __future__ import annotations

from typing import Any

import pytest

from ambiance.core.areas import AREAS
from ambiance.core.fitting import MAX_MINUTES, reach
from ambiance.core.profiles import PRESSURES, Profile, adapt
from ambiance.core.scenes import Routine, builtin_scenes_dir, load_library
from ambiance.core.shaping import NothingLeft, shape

LIBRARY = load_library([builtin_scenes_dir()])
MASSAGES = sorted(name for name in LIBRARY.routines if name != "quiet-room")
# Profiles: each area avoided, each health answer, each overall pressure.
PROFILES: dict[str, dict[str, Any]] = {
    **{f"avoid-{a}": {"avoid": [a]} for a in AREAS if not AREAS[a].caution},
    **{f"pressure-{p}": {"pressure": p} for p in PRESSURES},
    "pregnant": {"pressure": "firm", "health": {"pregnant": True}},
    "blood-thinners": {"pressure": "firm", "health": {"blood_thinners": True}},
    "dvt": {"pressure": "firm", "health": {"dvt_history": True}},
    "osteoporosis": {"pressure": "firm", "health": {"osteoporosis": True}},
    "varicose-calves": {"health": {"varicose_veins": ["calves"]}},
    "injured-shoulders": {"health": {"recent_injury": ["shoulders"]}},
    "skin-upper-back": {"health": {"skin_condition": ["upper_back"]}},
    "nut-allergy": {"oil": "almond", "health": {"nut_allergy": True}},
}
LIGHT_ONLY = {"blood-thinners", "dvt", "osteoporosis"}
LEFT_OUT = {
    "varicose-calves": "calves",
    "injured-shoulders": "shoulders",
    "skin-upper-back": "upper_back",
}


def person(case: str) -> Profile:
    return Profile.model_validate({"name": "sam", **PROFILES[case]})


def lengths(adapted: Routine, written: Routine) -> list[float]:
    """From the shortest this person's routine can take to 90 minutes (or its longest)."""
    found = reach(adapted, written=written)
    top = min(found.longest, MAX_MINUTES)
    middle = round((found.shortest + top) / 2)
    return sorted({found.shortest, middle, top})


@pytest.mark.parametrize("routine", MASSAGES)
@pytest.mark.parametrize("case", sorted(PROFILES))
def test_a_fitted_session_keeps_every_rule_of_its_person(routine: str, case: str) -> None:
    written = LIBRARY.routine(routine)
    profile = person(case)
    adapted, _ = adapt(written, LIBRARY.scenes, profile, None)
    for minutes in lengths(adapted, written):
        shaped = shape(written, LIBRARY.scenes, profile, None, minutes)
        fitted = shaped.routine
        where = f"{routine} for {case} in {minutes} min"
        # The length asked for, within a minute, the stages in the written order.
        assert abs(fitted.total_duration - minutes * 60) <= 60, where
        order = [s.name for s in written.stages]
        kept = [s.name for s in fitted.stages]
        assert kept == [n for n in order if n in kept], where
        assert kept == [s.name for s in adapted.stages], where  # fitting drops nothing
        steps = [step for stage in fitted.stages for step in stage.guidance.steps]
        for avoided in profile.avoid:
            assert all(avoided not in (step.areas or ()) for step in steps), where
        if case in LEFT_OUT:
            assert all(LEFT_OUT[case] not in (step.areas or ()) for step in steps), where
        if case == "pregnant":
            assert all(fitted.position_of(s) != "face_down" for s in fitted.stages), where
        if case in LIGHT_ONLY or case == "pressure-soft":
            pressed = [step for step in steps if step.areas]
            assert all(step.pressure in (None, "soft") for step in pressed), where
        if case in LIGHT_ONLY:
            assert "friction" not in kept, where
        if case == "nut-allergy":  # their almond oil is not offered; another one is
            text = " ".join(t for stage in fitted.stages for t in stage.guidance.texts)
            assert "oil: almond" not in text.lower(), where
            assert "grapeseed, sunflower or jojoba" in text, where


def test_a_routine_with_nothing_left_for_the_person_is_refused_naming_it() -> None:
    """Legs and feet for someone with varicose veins in the legs: every stage works an
    area left out, so there is no massage to give; the refusal says to choose another."""
    written = LIBRARY.routine("legs-and-feet")
    profile = Profile.model_validate({"name": "sam", "health": {"varicose_veins": True}})
    with pytest.raises(NothingLeft) as refused:
        shape(written, LIBRARY.scenes, profile, None, 20)
    assert refused.value.code == "nothing_left_to_do"
    assert "'legs-and-feet'" in refused.value.message
    assert "choose another routine" in refused.value.message
    # Another routine is fine for them.
    assert shape(LIBRARY.routine("back-and-shoulders"), LIBRARY.scenes, profile, None, None)
