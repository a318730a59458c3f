"""Body areas, health and today's answers: the vocabulary, the steps that name their areas,
and adapt() over every built-in routine and a grid of profiles."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ambiance.core.areas import AREAS, CAUTION, WORKED, areas_in_text, migrate_area, parse_area
from ambiance.core.people import ProfileBook, migrate
from ambiance.core.profiles import (
    FOCUS_GROWTH,
    MAX_STAGE_FACTOR,
    MIN_STAGE_FACTOR,
    PRESSURES,
    DayCheck,
    HealthAnswers,
    NotToday,
    Pressure,
    Profile,
    adapt,
    stop_signs,
)
from ambiance.core.scenes import (
    Guidance,
    Library,
    LightsSpec,
    Routine,
    Scene,
    Stage,
    Step,
    builtin_scenes_dir,
    load_library,
    warnings,
)
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import Store

LIBRARY = load_library([builtin_scenes_dir()])
MASSAGES = [r for r in LIBRARY.routines.values() if r.name != "quiet-room"]
ROUTINES = [r.name for r in MASSAGES]
RANK = {p: i for i, p in enumerate(PRESSURES)}
LEGS = ["thighs", "back_of_knee", "calves", "feet"]


def sam(**fields: Any) -> Profile:
    return Profile.model_validate({"name": "sam", "display_name": "Sam", **fields})


def session(routine: str, profile: Profile | None, today: DayCheck | None = None) -> Routine:
    return adapt(LIBRARY.routine(routine), LIBRARY.scenes, profile, today)[0]


def hands_on(routine: Routine) -> list[Step]:
    return [step for stage in routine.stages for step in stage.guidance.steps if step.areas]


def texts(routine: Routine) -> list[str]:
    """What the hands-on stages tell the giver to do: their summaries and the steps that
    work an area (a step with `areas: []` touches no one: "so their lower back can
    relax" while setting up)."""
    found = []
    for stage in routine.stages:
        working = [step.text for step in stage.guidance.steps if step.areas]
        if working:
            found += [stage.guidance.summary, *working]
    return found


# --- the vocabulary ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("lower_back", "lower_back"),
        ("lower back", "lower_back"),
        ("Lower-Back", "lower_back"),
        ("  LOWER   back ", "lower_back"),
        ("back of the knee", "back_of_knee"),
        ("Floating ribs and kidneys", "floating_ribs"),
        ("sides of the back", "sides"),
    ],
)
def test_an_area_is_its_id_or_its_plain_name_in_any_case(given: str, expected: str) -> None:
    assert parse_area(given) == expected


@pytest.mark.parametrize("bad", ["knee", "lower backs", "", "my bad knee", 3, None])
def test_anything_else_is_refused_naming_the_allowed_areas(bad: object) -> None:
    with pytest.raises(ValueError, match="lower_back \\(lower back\\)") as caught:
        parse_area(bad)
    assert "floating_ribs" in str(caught.value)


def test_the_vocabulary_has_areas_to_work_and_areas_of_caution() -> None:
    assert {"scalp", "neck", "shoulders", "upper_back", "lower_back", "calves", "feet"} <= {
        a.id for a in WORKED
    }
    assert {"armpit", "floating_ribs", "spine", "back_of_knee", "front_of_neck"} <= {
        a.id for a in CAUTION
    }
    assert all(a.caution and a.why for a in CAUTION)
    assert not any(a.caution for a in WORKED)
    names = [a.name for a in AREAS.values()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("value", "pressure"), [(1, "soft"), (4, "soft"), (5, "medium"), (6.0, "medium"), (7, "firm")]
)
def test_a_step_takes_the_anchored_scale(value: float, pressure: Pressure) -> None:
    assert Step(text="x", areas=["calves"], pressure=value).pressure == pressure


@pytest.mark.parametrize("value", [8, 10, 0, 11, True, "hard"])
def test_a_step_asking_for_too_much_or_nonsense_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate({"text": "x", "areas": ["calves"], "pressure": value})


@pytest.mark.parametrize(
    "step",
    [
        {"areas": ["armpit"], "technique": "petrissage", "pressure": "soft"},
        {"areas": ["sides", "floating_ribs"], "technique": "effleurage", "pressure": "medium"},
        {"areas": ["spine"], "technique": "effleurage"},  # not said soft
    ],
)
def test_an_area_of_caution_takes_only_a_soft_glide_or_a_still_hand(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="area of caution"):
        Step.model_validate({"text": "x", **step})
    ok = {**step, "technique": "effleurage", "pressure": "soft"}
    assert Step.model_validate({"text": "x", **ok}).areas == step["areas"]


# --- the built-in routines -----------------------------------------------------------


def test_every_built_in_step_names_its_areas() -> None:
    for routine in LIBRARY.routines.values():
        for stage in routine.stages:
            for step in stage.guidance.steps:
                assert step.areas is not None, (routine.name, stage.name, step.text)
    assert warnings(LIBRARY) == []


def test_every_area_a_built_in_step_s_text_names_is_one_it_declares() -> None:
    """So leaving an area out by what the steps declare also leaves out what they say."""
    for routine in LIBRARY.routines.values():
        for stage in routine.stages:
            for step in stage.guidance.steps:
                if step.areas == []:
                    continue  # says it works no area (set-up, oil, covering them)
                said = {a for a in areas_in_text(step.text) if not AREAS[a].caution}
                assert said <= set(step.areas or ()), (routine.name, stage.name, step.text)


def test_classic_petrissage_no_longer_kneads_at_the_armpit_or_the_floating_ribs() -> None:
    petrissage = LIBRARY.routine("classic").stage("petrissage").guidance
    sides = [s for s in petrissage.steps if "sides" in (s.areas or ())]
    for step in sides:
        assert step.technique != "petrissage"
    ribs = [s for s in petrissage.steps if "floating_ribs" in (s.areas or ())]
    assert ribs and all(s.pressure == "soft" for s in ribs)
    assert not any("knead the fleshy part there" in t for t in petrissage.texts)
    for step in petrissage.steps:
        if "armpit" in step.text:
            assert "short of the armpit" in step.text
    assert "armpit" in (petrissage.caution or "")


POSITIONS = {
    "classic": "face_down",
    "back-and-shoulders": "face_down",
    "taster": "face_down",
    "legs-and-feet": "face_down",
    "side-lying-back": "side_lying",
    "seated-neck-shoulders": "seated",
}


def test_built_in_routines_set_up_their_position_and_the_quiet_room_has_no_massage() -> None:
    assert {r.name: r.position for r in MASSAGES} == POSITIONS
    for routine in MASSAGES:
        assert any(s.position == routine.position for s in routine.stages[0].guidance.steps)
    quiet = LIBRARY.routine("quiet-room")
    assert hands_on(quiet) == []
    assert 15 * 60 <= quiet.total_duration <= 25 * 60


# --- avoided areas -------------------------------------------------------------------


@pytest.mark.parametrize("routine", ROUTINES)
@pytest.mark.parametrize("avoided", [a.id for a in AREAS.values()])
def test_no_step_works_an_avoided_area(routine: str, avoided: str) -> None:
    original = LIBRARY.routine(routine)
    adapted = session(routine, sam(avoid=[avoided]))
    for step in hands_on(adapted):
        assert avoided not in (step.areas or ())
    if not AREAS[avoided].caution:
        for text in texts(adapted):
            assert avoided not in areas_in_text(text), text
    # The stages kept are in the routine's order, and their time stays within bounds.
    names = [s.name for s in original.stages]
    kept = [s.name for s in adapted.stages]
    assert kept == [n for n in names if n in kept]
    for stage in adapted.stages:
        own = original.stage(stage.name).duration
        if own is None:
            assert stage.duration is None
        else:
            assert stage.duration is not None
            assert own * MIN_STAGE_FACTOR <= stage.duration <= own * MAX_STAGE_FACTOR


def test_the_headline_fault_avoid_lower_back_and_no_hands_on_it() -> None:
    adapted = session("classic", sam(avoid=["lower back"]))
    effleurage = adapted.stage("effleurage").guidance
    assert not any("lower back" in t for t in effleurage.texts)
    assert effleurage.texts[0] == (
        "Long, slow, gliding strokes with flat, relaxed hands over the upper back and "
        "shoulders only."
    )
    assert effleurage.caution is not None
    assert effleurage.caution.endswith("Sam asked you to avoid: lower back.")


def test_a_stage_with_nothing_left_to_do_is_left_out_and_getting_ready_says_so() -> None:
    adapted = session("taster", sam(avoid=["shoulders"]))
    assert [s.name for s in adapted.stages] == ["prepare", "effleurage", "rest"]
    prepare = adapted.stage("prepare").guidance.texts
    assert "Left out for Sam: Kneading the shoulders (nothing would be left to do there)." in (
        prepare
    )
    everything = session("taster", sam(avoid=["shoulders", "upper_back", "lower_back", "sides"]))
    assert [s.name for s in everything.stages] == ["prepare"]


def test_a_plain_text_step_is_read_for_its_areas_and_check_says_it_names_none(
    tmp_path: Path,
) -> None:
    guidance = Guidance(
        summary="Knead.",
        steps=["Knead the calves slowly.", "Knead the thighs.", "Breathe with them."],
    )
    mine = Routine(
        name="legs",
        stages=[Stage(name="knead", scene="s", duration=300, guidance=guidance)],
    )
    scenes = {"s": Scene(name="s", lights=LightsSpec(kelvin=2200, brightness=20))}
    adapted, _ = adapt(mine, scenes, sam(avoid=["calves"]))
    assert adapted.stage("knead").guidance.texts == ["Knead the thighs.", "Breathe with them."]
    assert adapted.stage("knead").guidance.steps[0].areas == ["thighs"]
    library = Library(scenes=scenes, routines={"legs": mine}, sources={"routine:legs": tmp_path})
    found = warnings(library)
    assert len(found) == 3
    assert "routines.legs.stages[0].guidance.steps[0]: names no body area" in found[0]


# --- focus and pressure per area -----------------------------------------------------


def test_a_focus_area_gets_more_of_the_stage_s_time_and_its_steps_are_marked() -> None:
    classic = LIBRARY.routine("classic")
    adapted = session("classic", sam(focus=["shoulders"]))
    petrissage = adapted.stage("petrissage")
    assert petrissage.duration == (classic.stage("petrissage").duration or 0) * FOCUS_GROWTH
    marked = [s for s in petrissage.guidance.steps if s.focus]
    assert marked and all("shoulders" in (s.areas or ()) for s in marked)
    assert "extra time on the shoulders" in petrissage.guidance.summary
    # No stage works the feet: nothing grows.
    feet = session("classic", sam(focus=["feet"]))
    assert [s.duration for s in feet.stages] == [s.duration for s in classic.stages]
    # Their own length for a stage wins.
    own = session("classic", sam(focus=["shoulders"], stage_minutes={"petrissage": 12}))
    assert own.stage("petrissage").duration == 12 * 60


@pytest.mark.parametrize("routine", ROUTINES)
@pytest.mark.parametrize("overall", PRESSURES)
@pytest.mark.parametrize("there", PRESSURES)
def test_pressure_per_area_is_used_and_a_softer_one_always_kept(
    routine: str, overall: Pressure, there: Pressure
) -> None:
    profile = sam(pressure=overall, area_pressure={"shoulders": there})
    adapted = session(routine, profile)
    for stage in adapted.stages:
        for step in stage.guidance.steps:
            if "shoulders" in (step.areas or ()):
                assert step.pressure is not None
                assert RANK[step.pressure] <= RANK[there], (stage.name, step.text)
            if step.areas and step.pressure is not None:
                assert RANK[step.pressure] <= max(RANK[overall], RANK[there])


def test_pressure_per_area_is_said_in_the_stage() -> None:
    adapted = session("classic", sam(pressure="firm", area_pressure={"lower back": "soft"}))
    pressure = adapted.stage("petrissage").guidance.pressure or ""
    assert pressure.startswith("Use firm pressure for Sam here.")
    effleurage = adapted.stage("effleurage").guidance.pressure or ""
    assert "On the lower back: a soft touch." in effleurage


# --- health and today ----------------------------------------------------------------

LIGHT_ONLY = [
    ({"health": {"blood_thinners": True}}, None),
    ({"health": {"dvt_history": True}}, None),
    ({"health": {"osteoporosis": True}}, None),
    ({}, DayCheck(painkillers_or_alcohol=True)),
]


@pytest.mark.parametrize("routine", ROUTINES)
@pytest.mark.parametrize(("fields", "today"), LIGHT_ONLY)
@pytest.mark.parametrize("overall", PRESSURES)
def test_light_pressure_only_holds_everywhere_and_leaves_out_friction(
    routine: str, fields: dict[str, Any], today: DayCheck | None, overall: Pressure
) -> None:
    profile = sam(pressure=overall, stage_pressure={"petrissage": "firm"}, **fields)
    adapted = session(routine, profile, today)
    for step in hands_on(adapted):
        assert step.pressure == "soft", step.text
        assert step.technique != "friction", step.text
    assert "friction" not in [s.name for s in adapted.stages]
    for stage in adapted.stages:
        if stage.guidance.pressure and stage.name != "prepare":
            assert "a soft touch" in stage.guidance.pressure
            assert "medium pressure" not in stage.guidance.pressure.split(".")[0]
    notes = adapted.stage("prepare").guidance.texts
    assert any(t.startswith("A soft touch only") for t in notes)


@pytest.mark.parametrize("routine", ROUTINES)
def test_pregnancy_is_side_lying_never_face_down_and_soft_on_legs_and_lower_back(
    routine: str,
) -> None:
    profile = sam(pressure="firm", scent="ylang-ylang", health={"pregnant": True})
    adapted = session(routine, profile)
    original = LIBRARY.routine(routine)
    turned = [s.name for s in original.stages if original.position_of(s) == "face_down"]
    for stage in adapted.stages:
        assert adapted.position_of(stage) != "face_down"
        if stage.name in turned:
            assert adapted.position_of(stage) == "side_lying"
        for step in stage.guidance.steps:
            assert step.position != "face_down"
            assert "face down" not in step.text.lower() or "never face down" in step.text
            if {"lower_back", "thighs", "calves"} & set(step.areas or ()):
                assert step.pressure == "soft", step.text
    prepare = adapted.stage("prepare").guidance.texts
    if turned:
        assert any(t.startswith("Help Sam lie on their side") for t in prepare)
    assert any("No strong essential oils" in t for t in prepare)
    hands = [
        s
        for s in adapted.stages
        if s.name in turned and any(step.areas for step in s.guidance.steps)
    ]
    assert all("Sam lies on their side" in s.guidance.summary for s in hands)


@pytest.mark.parametrize("routine", ROUTINES)
@pytest.mark.parametrize(
    ("fields", "today", "left_out"),
    [
        ({"varicose_veins": ["thighs"]}, None, LEGS),
        ({"varicose_veins": ["calves"]}, None, ["calves", "feet"]),
        ({"varicose_veins": True}, None, LEGS),
        ({"recent_injury": ["upper back"]}, None, ["upper_back"]),
        ({"skin_condition": ["shoulders"]}, None, ["shoulders"]),
        ({}, DayCheck(sore=["lower back", "sides"]), ["lower_back", "sides"]),
    ],
)
def test_veins_injuries_skin_and_sore_spots_are_left_out_for_the_session(
    routine: str, fields: dict[str, Any], today: DayCheck | None, left_out: list[str]
) -> None:
    adapted = session(routine, sam(health=fields), today)
    for step in hands_on(adapted):
        assert not set(left_out) & set(step.areas or ()), step.text
    for text in texts(adapted):
        assert not set(left_out) & set(areas_in_text(text)), text
    caution = adapted.stage("prepare").guidance.caution or ""
    assert "Also leave out today:" in caution


def test_an_injury_without_where_asks_the_giver_and_warns_on_the_profile() -> None:
    profile = sam(health={"recent_injury": True, "skin_condition": False})
    prepare = session("classic", profile).stage("prepare").guidance.texts
    assert (
        "Ask Sam where exactly there is an injury, operation or fresh bruise, and keep well "
        "away from it." in prepare
    )
    assert any(w.startswith("health.recent_injury: where?") for w in profile.warnings)


def test_a_nut_allergy_drops_a_nut_oil_and_says_what_to_use() -> None:
    profile = sam(oil="sweet almond", scent="lavender", health={"nut_allergy": True})
    prepare = session("classic", profile).stage("prepare").guidance.texts
    assert prepare[0] == "For Sam: scent: lavender."
    assert "No almond or other nut oils: use grapeseed, sunflower or jojoba oil." in prepare
    assert not any("sweet almond" in t for t in prepare)
    # Without the allergy their oil stays.
    plain = session("classic", sam(oil="sweet almond")).stage("prepare").guidance.texts
    assert plain[0] == "For Sam: oil: sweet almond."


def test_the_docs_that_suggest_an_oil_say_no_nut_oils_with_an_allergy() -> None:
    for routine in MASSAGES:
        prepare = " ".join(routine.stages[0].guidance.texts)
        assert "nut" in prepare and "jojoba" in prepare, routine.name


@pytest.mark.parametrize("routine", ROUTINES)
@pytest.mark.parametrize(
    "today",
    [
        DayCheck(fever_or_unwell=True),
        DayCheck(swollen_calf=True),
        DayCheck(fever_or_unwell=True, swollen_calf=True, painkillers_or_alcohol=True),
    ],
)
def test_a_stop_sign_adapts_no_routine(routine: str, today: DayCheck) -> None:
    for profile in (sam(), None):
        with pytest.raises(NotToday) as caught:
            session(routine, profile, today)
        detail = caught.value.detail
        answered = [s.answer for s in stop_signs(profile, today)]
        assert [s["answer"] for s in detail["stop_signs"]] == answered
        assert detail["room_only"] == {"room_only": True}
        assert caught.value.code == "no_massage_today"
        assert "room_only" in caught.value.message


def test_no_stop_sign_without_one() -> None:
    assert stop_signs(sam(), DayCheck(fever_or_unwell=False, sore=True)) == []
    assert stop_signs(sam(), None) == []


def test_today_without_a_profile_shapes_the_session_too() -> None:
    adapted = session("classic", None, DayCheck(painkillers_or_alcohol=True, sore=["neck"]))
    assert all(step.pressure == "soft" for step in hands_on(adapted))
    prepare = adapted.stage("prepare").guidance
    assert prepare.pressure is not None and "likes" not in prepare.pressure
    assert "Use a soft touch for them here." in (
        adapted.stage("petrissage").guidance.pressure or ""
    )


def test_the_health_shape_is_exactly_as_asked() -> None:
    profile = Profile.model_validate({"name": "sam", "health": {"pregnant": True}})
    assert profile.health == HealthAnswers(pregnant=True)
    assert Profile.model_validate(profile.model_dump(mode="json")) == profile
    for bad in ({"pregnant": "yes"}, {"pregnancy": True}, {"sore": ["neck"]}):
        with pytest.raises(ValidationError):
            Profile.model_validate({"name": "sam", "health": bad})
    with pytest.raises(ValidationError, match="not a body area"):
        Profile.model_validate({"name": "sam", "health": {"varicose_veins": ["knees"]}})


# --- free text from before areas had ids ----------------------------------------------


def test_free_text_areas_migrate_where_they_match_and_are_kept_where_not() -> None:
    old = {
        "name": "sam",
        "focus": ["Shoulders", "upper-back", "my neck area"],
        "avoid": ["lower back", "legs", "sore left shoulder", "my bad knee"],
    }
    data, changed = migrate(old)
    assert changed
    profile = Profile.model_validate(data)
    assert profile.focus == ["shoulders", "upper_back"]
    assert profile.avoid == ["lower_back", "thighs", "calves", "shoulders"]
    assert profile.unmatched_areas.focus == ["my neck area"]
    assert profile.unmatched_areas.avoid == ["sore left shoulder", "my bad knee"]
    assert len(profile.warnings) == 4  # three kept as written; shoulders both ways
    assert profile.warnings[-1] == "focus and avoid both name shoulders: it is left out"
    assert migrate(profile.model_dump(mode="json")) == (profile.model_dump(mode="json"), False)
    assert migrate_area("knees", generous=True) == (["back_of_knee"], True)


def test_a_stored_profile_is_migrated_once_reported_and_its_notes_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store(tmp_path / "ambiance.db") as store:
        store.profiles.put("sam", {"name": "sam", "avoid": ["lower back", "my bad knee"]})
        book = ProfileBook(store, FakeClock())
        with caplog.at_level(logging.WARNING):
            first = book.get("sam")
            assert book.list() == [first]
            assert book.get("sam") == first
        migrated = [r for r in caplog.records if "body areas' ids" in r.getMessage()]
        assert len(migrated) == 1
        assert "bad knee" not in caplog.text  # what they wrote stays out of the log
        assert first.avoid == ["lower_back"]
        assert store.profiles.get("sam") == first.model_dump(mode="json", exclude={"warnings"})
        caution = session("classic", first).stage("effleurage").guidance.caution or ""
        assert caution.endswith(
            "Sam asked you to avoid: lower back and my bad knee.".replace("Sam", "sam")
        )
