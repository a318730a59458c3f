"""The built-in routines as a beginner's teacher would read them: areas of caution, friction
in short passes, the giver's body, the anchored pressure scale, the positions and their
pillows, and pregnancy turning every routine side-lying in words that still read right."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from ambiance.core.areas import AREAS
from ambiance.core.fitting import roles, technique
from ambiance.core.profiles import ROOM_ONLY_ROUTINE, Profile, adapt
from ambiance.core.scenes import (
    Guidance,
    Library,
    Routine,
    Stage,
    Step,
    builtin_scenes_dir,
    load_library,
)

LIBRARY: Library = load_library([builtin_scenes_dir()])
MASSAGES = sorted(name for name in LIBRARY.routines if name != ROOM_ONLY_ROUTINE)
NEW = {"side-lying-back": "side_lying", "seated-neck-shoulders": "seated", "legs-and-feet": None}
PRESSING = ("petrissage", "friction")  # the techniques that apply pressure


def sam(**fields: object) -> Profile:
    return Profile.model_validate({"name": "sam", "display_name": "Sam", **fields})


def steps(routine: Routine) -> Iterator[tuple[Stage, Step]]:
    for stage in routine.stages:
        for step in stage.guidance.steps:
            yield stage, step


def pressing(stage: Stage) -> bool:
    return any(step.technique in PRESSING for step in stage.guidance.steps)


def words(guidance: Guidance) -> list[str]:
    return [guidance.summary, *guidance.texts, guidance.pressure or "", guidance.caution or ""]


# --- the routines there are ----------------------------------------------------------------


def test_the_new_routines_are_built_in_and_in_every_grid() -> None:
    assert set(NEW) <= set(MASSAGES)
    assert {"classic", "back-and-shoulders", "taster"} <= set(MASSAGES)
    # The parametrized grids below are made from the library: an empty one would pass.
    assert {name for name, _ in FRICTION_STAGES} == {
        "classic",
        "back-and-shoulders",
        "seated-neck-shoulders",
    }


@pytest.mark.parametrize(("name", "position"), NEW.items())
def test_a_new_routine_keeps_its_shape_warm_up_middle_ending(
    name: str, position: str | None
) -> None:
    routine = LIBRARY.routine(name)
    parts = roles(routine)
    timed = [s for s in routine.stages if s.timed]
    assert technique(timed[0]) == "effleurage" and parts[timed[0].name] == "warm-up"
    assert "middle" in parts.values() and parts[timed[-1].name] == "ending"
    closing = [s for s in timed if technique(s) == "closing"]
    assert closing, name
    assert all(st.technique in ("effleurage", "holding", None) for st in closing[0].guidance.steps)
    if position is not None:
        assert all(routine.position_of(s) == position for s in routine.stages), name


def test_side_lying_back_is_both_sides_gentle_on_the_lower_back_and_the_ribs() -> None:
    routine = LIBRARY.routine("side-lying-back")
    assert 20 * 60 <= routine.total_duration <= 35 * 60
    kneading = [s for s in routine.stages if technique(s) == "petrissage"]
    assert len(kneading) == 2  # one side, then the other
    assert not [s for s in routine.stages if technique(s) == "friction"]
    turns = [st for _, st in steps(routine) if "turn over" in st.text and st.areas == []]
    assert len(turns) == 1
    for _, step in steps(routine):
        worked = set(step.areas or ())
        if worked & {"lower_back", "sides", "floating_ribs"}:
            assert step.pressure == "soft", step.text
            assert step.technique in ("effleurage", "holding"), step.text


def test_seated_neck_and_shoulders_is_short_and_never_presses_the_front_of_the_neck() -> None:
    routine = LIBRARY.routine("seated-neck-shoulders")
    assert 10 * 60 <= routine.total_duration <= 15 * 60
    neck = [st for _, st in steps(routine) if "neck" in (st.areas or ())]
    assert neck and all(st.pressure == "soft" for st in neck)
    assert not any("front_of_neck" in (st.areas or ()) for _, st in steps(routine))
    for stage in routine.stages:
        if any(st in neck for st in stage.guidance.steps):
            assert "front or sides of the neck" in " ".join(words(stage.guidance)), stage.name


def test_legs_and_feet_goes_up_the_legs_and_glides_over_the_back_of_the_knee() -> None:
    routine = LIBRARY.routine("legs-and-feet")
    worked = {a for _, st in steps(routine) for a in st.areas or ()}
    assert {"calves", "thighs", "feet", "back_of_knee"} <= worked
    positions = [routine.position_of(s) for s in routine.stages]
    assert positions[0] == "face_down" and positions[-1] == "face_up"
    assert positions == sorted(positions, key=lambda p: p != "face_down")  # turns once
    text = " ".join(t for s in routine.stages for t in words(s.guidance))
    assert "towards the heart" in text
    knee = [st for _, st in steps(routine) if "back_of_knee" in (st.areas or ())]
    assert knee and all(st.pressure == "soft" and st.technique == "effleurage" for st in knee)


# --- areas of caution ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MASSAGES)
def test_no_built_in_step_kneads_or_presses_near_an_area_of_caution(name: str) -> None:
    routine = LIBRARY.routine(name)
    for stage, step in steps(routine):
        worked = set(step.areas or ())
        where = (stage.name, step.text)
        for area_id in worked:
            if AREAS[area_id].caution:
                assert step.pressure == "soft", where
                assert step.technique in ("effleurage", "holding"), where
        # The sides of the back end in the floating ribs, over the kidneys: broad, light
        # strokes only, and the step says which area of caution it glides over.
        if "sides" in worked:
            assert "floating_ribs" in worked, where
        # A stroke from the calf to the thigh passes the back of the knee (face down or
        # on the side): a light glide, named.
        if {"calves", "thighs"} <= worked and routine.position_of(stage) != "face_up":
            assert "back_of_knee" in worked, where
    # And a session for someone who likes it firm everywhere keeps them soft.
    firm = sam(pressure="firm", stage_pressure={s.name: "firm" for s in routine.stages})
    adapted, _ = adapt(routine, LIBRARY.scenes, firm)
    for _, step in steps(adapted):
        if any(AREAS[a].caution for a in step.areas or ()):
            assert step.pressure == "soft", step.text
            assert step.technique in ("effleurage", "holding"), step.text


# --- friction ------------------------------------------------------------------------------

FRICTION_STAGES = [
    (name, stage.name)
    for name in MASSAGES
    for stage in LIBRARY.routine(name).stages
    if technique(stage) == "friction"
]


@pytest.mark.parametrize(("name", "stage_name"), FRICTION_STAGES)
def test_friction_is_short_and_alternates_with_effleurage(name: str, stage_name: str) -> None:
    stage = LIBRARY.routine(name).stage(stage_name)
    assert stage.duration is not None and 60 <= stage.duration <= 3 * 60
    used = [st.technique for st in stage.guidance.steps if st.technique is not None]
    assert used[0] == "friction" and used[-1] == "effleurage", used
    assert set(used) == {"friction", "effleurage"}, used
    for now, after in pairwise(used):
        if now == "friction":
            assert after == "effleurage", used  # each few passes smoothed over, then on
    passes = [st.text for st in stage.guidance.steps if st.technique == "friction"]
    assert any("three or four" in text for text in passes), passes


# --- the giver's body and the pressure scale -----------------------------------------------


def mechanics(text: str) -> bool:
    """Body weight, straight wrists and spared thumbs, said in one step."""
    lowered = text.lower()
    return bool(re.search(r"\blean", lowered)) and "wrist" in lowered and "thumb" in lowered


@pytest.mark.parametrize("name", MASSAGES)
def test_every_stage_that_applies_pressure_says_how_to_use_your_body(name: str) -> None:
    stages = [s for s in LIBRARY.routine(name).stages if pressing(s)]
    assert stages
    for stage in stages:
        assert any(mechanics(text) for text in stage.guidance.texts), (name, stage.name)


ANCHORS = [
    r"1 or 2( is)? barely touching",
    r"3 or 4 soft",
    r"5 or 6 medium",
    r"7 firm but good",
    r"8 or more( is)? too much",
]


def shows_the_scale(text: str | None) -> bool:
    return text is not None and all(re.search(anchor, text) for anchor in ANCHORS)


@pytest.mark.parametrize("name", MASSAGES)
def test_the_anchored_scale_is_shown_where_pressure_is_asked(name: str) -> None:
    routine = LIBRARY.routine(name)
    prepare = routine.stages[0].guidance.pressure
    assert shows_the_scale(prepare), prepare
    assert prepare is not None and re.search(r"breath|tense|flinch", prepare)
    first = next(s for s in routine.stages if s.timed)
    assert shows_the_scale(first.guidance.pressure), first.guidance.pressure
    for stage in routine.stages:
        if pressing(stage):
            asked = stage.guidance.pressure or ""
            assert "1 to 10" in asked or "scale" in asked, (stage.name, asked)
            assert "7" in asked, (stage.name, asked)  # never past 7: firm but good


@pytest.mark.parametrize("name", MASSAGES)
def test_one_hand_stays_on_them_they_stay_covered_and_it_ends_quietly(name: str) -> None:
    routine = LIBRARY.routine(name)
    text = " ".join(t for s in routine.stages for t in words(s.guidance)).lower()
    assert "one hand on them" in text
    assert "cover" in text
    quiet = [i for i, s in enumerate(routine.stages) if s.scene == "rest"]
    assert quiet and all(s.scene in ("rest", "wake") for s in routine.stages[quiet[0] :])
    assert "lights come" in " ".join(words(routine.stages[quiet[0]].guidance))


# --- positions and pillows -----------------------------------------------------------------

PILLOWS = {
    "face_down": ["pillow under their ankles"],
    "side_lying": ["under the head", "between the knees", "hug"],
    "seated": ["chair", "table", "pillow"],
    "face_up": ["under the knees"],
}


def setting_up(stage: Stage, position: str) -> list[str]:
    return [st.text for st in stage.guidance.steps if st.position == position]


@pytest.mark.parametrize("name", MASSAGES)
def test_each_position_is_set_up_with_its_pillows(name: str) -> None:
    routine = LIBRARY.routine(name)
    before = None
    for stage in routine.stages:
        position = routine.position_of(stage)
        if position != before:
            found = setting_up(stage, position)
            assert len(found) == 1, (stage.name, position)
            for pillow in PILLOWS[position]:
                assert pillow in found[0], (stage.name, found[0])
        before = position


# --- pregnancy -----------------------------------------------------------------------------

FACE_DOWN = re.compile(
    r"face[ -]?down|on (their|your) (front|tummy|stomach|belly)|lie on (their|your) front",
    re.IGNORECASE,
)


@pytest.mark.parametrize("name", sorted(LIBRARY.routines))
def test_pregnancy_is_never_face_down_and_no_text_says_so(name: str) -> None:
    routine = LIBRARY.routine(name)
    adapted, _ = adapt(routine, LIBRARY.scenes, sam(health={"pregnant": True}))
    for stage in adapted.stages:
        own = routine.position_of(routine.stage(stage.name))
        now = adapted.position_of(stage)
        assert now != "face_down", stage.name
        assert now == ("side_lying" if own == "face_down" else own), stage.name
        for text in [stage.title, *words(stage.guidance)]:
            for found in FACE_DOWN.finditer(text):
                assert text[max(0, found.start() - 6) : found.start()] == "never ", text
    if any(routine.position_of(s) == "face_down" for s in routine.stages):
        prepare = adapted.stages[0].guidance.texts
        (setup,) = [t for t in prepare if t.startswith("Help Sam lie on their side")]
        for pillow in PILLOWS["side_lying"]:
            assert pillow in setup
        assert "halfway" in setup and "turn over" in setup  # when to do the other side


PROFILES: list[dict[str, Any]] = [{"avoid": [area_id]} for area_id in AREAS] + [
    {"health": {"pregnant": True}},
    {"health": {"varicose_veins": ["calves"]}},
    {"health": {"varicose_veins": ["feet"]}},
    {"health": {"recent_injury": ["feet"]}},
    {"health": {"pregnant": True, "skin_condition": ["feet"]}},
    {"health": {"blood_thinners": True}},
]


@pytest.mark.parametrize("name", MASSAGES)
def test_a_change_of_position_is_always_set_up_even_when_its_stage_is_left_out(
    name: str,
) -> None:
    """Varicose veins in the calves leave the feet out of `legs-and-feet`, and the feet
    were where they turn onto their back: the closing strokes say it instead."""
    routine = LIBRARY.routine(name)
    for fields in PROFILES:
        adapted, _ = adapt(routine, LIBRARY.scenes, sam(**fields))
        before = None
        for stage in adapted.stages:
            position = adapted.position_of(stage)
            if before is not None and position != before:
                first = stage.guidance.steps[0]
                assert first.position == position, (fields, stage.name, first.text)
                for pillow in PILLOWS[position]:
                    assert pillow in first.text, (fields, stage.name, first.text)
            before = position


def test_the_turn_onto_the_back_moves_to_the_closing_strokes_without_the_feet() -> None:
    adapted, _ = adapt(
        LIBRARY.routine("legs-and-feet"),
        LIBRARY.scenes,
        sam(health={"varicose_veins": ["calves"]}),
    )
    assert "feet" not in [s.name for s in adapted.stages]
    closing = adapted.stage("closing").guidance.texts
    assert closing[0].startswith("Help them turn onto their back")
    assert sum("turn onto their back" in t for s in adapted.stages for t in s.guidance.texts) == 1


def test_a_routine_of_your_own_that_turns_them_without_a_word_gets_the_set_up() -> None:
    def stage(name: str, position: str) -> Stage:
        glide = Step(text="Glide up the calves.", areas=["calves"], technique="effleurage")
        return Stage.model_validate(
            {
                "name": name,
                "scene": "rest",
                "duration": 60,
                "position": position,
                "guidance": {"summary": "Glide.", "steps": [glide]},
            }
        )

    mine = Routine(name="mine", stages=[stage("backs", "face_down"), stage("fronts", "face_up")])
    adapted, _ = adapt(mine, LIBRARY.scenes, sam())
    assert adapted.stage("backs").guidance.texts == ["Glide up the calves."]
    assert adapted.stage("fronts").guidance.texts == [
        "Help Sam lie on their back with a pillow under the knees.",
        "Glide up the calves.",
    ]
    assert adapted.stage("fronts").guidance.steps[0].position == "face_up"
