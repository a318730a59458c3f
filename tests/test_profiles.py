"""Profiles: adapting a session to a person within safe bounds, and learning from feedback."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ambiance.core.profiles import (
    MAX_BRIGHTNESS,
    MAX_KELVIN,
    MIN_BRIGHTNESS,
    MIN_KELVIN,
    PRESSURES,
    Feedback,
    Pressure,
    Profile,
    UnmatchedAreas,
    adapt,
    learn,
    session_pressure,
)
from ambiance.core.scenes import (
    Guidance,
    Library,
    LightsSpec,
    Routine,
    Scene,
    Stage,
    builtin_scenes_dir,
    load_library,
)
from ambiance.errors import NotFound


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library([builtin_scenes_dir()])


@pytest.fixture(scope="module")
def classic(library: Library) -> Routine:
    return library.routine("classic")


def sam(**fields: Any) -> Profile:
    return Profile(name="sam", display_name="Sam", **fields)


def stage(
    name: str, duration: float | None, scene: str | None = None, caution: str | None = None
) -> Stage:
    return Stage(
        name=name,
        scene=scene or name,
        duration=duration,
        guidance=Guidance(summary=f"{name}.", pressure="Ask.", caution=caution),
    )


def routine(*stages: Stage) -> Routine:
    return Routine(name="mine", stages=list(stages))


def lit(name: str, **lights: Any) -> Scene:
    return Scene(name=name, lights=LightsSpec(**lights))


def adapted_stage(r: Routine, scenes: dict[str, Scene], profile: Profile, name: str) -> Stage:
    return adapt(r, scenes, profile)[0].stage(name)


# --- the profile ---------------------------------------------------------------------


def test_a_profile_round_trips_through_json() -> None:
    profile = sam(
        pressure="firm",
        focus=["shoulders"],
        avoid=["lower back"],
        warmth="warmer",
        brightness="dimmer",
        music="no vocals",
        oil="sweet almond",
        scent="lavender",
        notes="Ticklish feet.",
        stage_minutes={"petrissage": 18.5},
        stage_pressure={"friction": "medium"},
        favourite_stage="petrissage",
        last_feedback={"petrissage": "firmer"},
        sessions=3,
    )
    data = profile.model_dump(mode="json")
    assert Profile.model_validate(data) == profile
    assert Profile.model_validate_json(profile.model_dump_json()) == profile
    assert Profile(name="jo").model_dump(mode="json")["pressure"] == "medium"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Sam Smith"},  # not an id
        {"focus": ["x"] * 21},
        {"avoid": ["a" * 201]},
        {"avoid": ["  "]},
        {"notes": "n" * 2001},
        {"oil": "o" * 201},
        {"display_name": "d" * 101},
        {"pressure": "hard"},
        {"warmth": "hot"},
        {"stage_minutes": {"petrissage": 0}},
        {"stage_minutes": {"petrissage": float("inf")}},
        {"stage_minutes": {"Not A Stage": 5}},
        {"stage_minutes": {f"s{i}": 5 for i in range(65)}},
        {"stage_pressure": {"friction": "brutal"}},
        {"last_feedback": {"friction": "harder"}},
        {"sessions": -1},
        {"colour": "blue"},  # unknown field
    ],
)
def test_profile_limits(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Profile.model_validate({"name": "sam", **fields})


def test_feedback_limits() -> None:
    assert Feedback(rating=5).pressure == {}
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": True}, {"rating": 3, "notes": "x" * 2001}):
        with pytest.raises(ValidationError):
            Feedback.model_validate(bad)
    with pytest.raises(ValidationError):
        Feedback.model_validate({"rating": 3, "pressure": {"petrissage": "harder"}})


def test_feedback_check_names_an_unknown_stage(classic: Routine) -> None:
    Feedback(rating=4, pressure={"petrissage": "firmer"}, favourite_stage="friction").check(classic)
    with pytest.raises(NotFound, match="'shiatsu'") as caught:
        Feedback(rating=4, pressure={"shiatsu": "firmer"}).check(classic)
    assert caught.value.detail == {"kind": "stage", "name": "shiatsu"}
    assert "petrissage" in caught.value.message
    with pytest.raises(NotFound, match="'feet'"):
        Feedback(rating=4, favourite_stage="feet").check(classic)


# --- adapt: durations ----------------------------------------------------------------


def test_no_preferences_changes_no_duration_and_no_light(
    library: Library, classic: Routine
) -> None:
    adapted, scenes = adapt(classic, library.scenes, Profile(name="jo"))
    assert [s.duration for s in adapted.stages] == [s.duration for s in classic.stages]
    # Every scene the routine references comes back, by its own name, unchanged here.
    assert scenes == {s.scene: library.scenes[s.scene] for s in classic.stages}


def test_preferred_minutes_within_bounds_on_the_shipped_routine(
    library: Library, classic: Routine
) -> None:
    profile = sam(
        stage_minutes={
            "petrissage": 20,  # 15 min in the routine: within bounds
            "friction": 100,  # 3 min: at most twice, 6 min
            "closing": 1,  # 8 min: at least half, 4 min
            "prepare": 10,  # untimed stays untimed
        }
    )
    adapted, _ = adapt(classic, library.scenes, profile)
    durations = {s.name: s.duration for s in adapted.stages}
    assert durations["petrissage"] == 20 * 60
    assert durations["friction"] == 6 * 60
    assert durations["closing"] == 4 * 60
    assert durations["prepare"] is None
    assert durations["effleurage"] == 10 * 60  # no preference: as the routine says


def test_durations_are_clamped_to_one_and_sixty_minutes() -> None:
    r = routine(stage("long", 90 * 60), stage("short", 90), stage("tiny", 20))
    scenes = {n: lit(n) for n in ("long", "short", "tiny")}
    high = sam(stage_minutes={"long": 500, "short": 0.1, "tiny": 30})
    adapted, _ = adapt(r, scenes, high)
    assert adapted.stage("long").duration == 60 * 60  # 2x would be 3 h: 60 min at most
    assert adapted.stage("short").duration == 60  # 0.5x would be 45 s: 1 min at least
    # 20 s: half to twice is 10-40 s, never a minute: no room, the routine's length stays.
    assert adapted.stage("tiny").duration == 20
    low = sam(stage_minutes={"long": 5})
    assert adapted_stage(r, scenes, low, "long").duration == 45 * 60  # half of 90 min


def test_adapt_keeps_names_order_and_leaves_the_inputs_alone(
    library: Library, classic: Routine
) -> None:
    before = classic.model_dump()
    profile = sam(stage_minutes={"petrissage": 20}, avoid=["neck"], warmth="cooler")
    adapted, _ = adapt(classic, library.scenes, profile)
    assert adapted.name == classic.name
    assert [s.name for s in adapted.stages] == [s.name for s in classic.stages]
    assert [s.scene for s in adapted.stages] == [s.scene for s in classic.stages]
    assert classic.model_dump() == before
    assert library.scenes["effleurage"].lights.kelvin == 2400
    # The adapted models are still valid ones.
    Routine.model_validate(adapted.model_dump())


def test_every_shipped_routine_adapts_to_a_full_profile(library: Library) -> None:
    profile = sam(
        pressure="firm",
        focus=["shoulders"],
        avoid=["lower back"],
        warmth="warmer",
        brightness="brighter",
        oil="almond",
        stage_minutes={"petrissage": 40},
        last_feedback={"friction": "softer"},
        favourite_stage="rest",
    )
    for r in library.routines.values():
        adapted, scenes = adapt(r, library.scenes, profile)
        Routine.model_validate(adapted.model_dump())
        for scene in scenes.values():
            Scene.model_validate(scene.model_dump())
        assert set(scenes) == {s.scene for s in r.stages}


def test_a_missing_scene_is_not_found() -> None:
    with pytest.raises(NotFound, match="'nowhere'"):
        adapt(routine(stage("a", 60, scene="nowhere")), {}, sam())


# --- adapt: light --------------------------------------------------------------------


def kelvins(scenes: dict[str, Scene]) -> dict[str, int | None]:
    return {name: scene.lights.kelvin for name, scene in scenes.items()}


def test_warmer_and_cooler_on_the_shipped_scenes(library: Library, classic: Routine) -> None:
    _, warmer = adapt(classic, library.scenes, sam(warmth="warmer"))
    assert kelvins(warmer) == {
        "prepare": 2400,  # 2700 - 300
        "effleurage": 2100,
        "petrissage": 2100,
        "friction": 2300,
        "closing": 2000,
        "rest": 2000,  # 2200 - 300 would be 1900: not below 2000 K
        "wake": 2600,
    }
    _, cooler = adapt(classic, library.scenes, sam(warmth="cooler"))
    assert kelvins(cooler)["wake"] == 3200
    assert kelvins(cooler)["rest"] == 2500


def test_warmth_is_clamped_and_never_moves_the_other_way() -> None:
    scenes = {
        "near-top": lit("near-top", kelvin=3900),
        "candle": lit("candle", kelvin=1800),
        "daylight": lit("daylight", kelvin=5000),
        "plain": lit("plain"),
    }
    r = routine(*(stage(name, 60) for name in scenes))
    _, cooler = adapt(r, scenes, sam(warmth="cooler"))
    assert kelvins(cooler) == {
        "near-top": MAX_KELVIN,
        "candle": 2100,
        "daylight": 5000,  # already colder than the bound: left, not warmed
        "plain": None,  # no colour temperature: unchanged
    }
    _, warmer = adapt(r, scenes, sam(warmth="warmer"))
    assert kelvins(warmer) == {
        "near-top": 3600,
        "candle": 1800,  # already warmer than the bound: left, not cooled
        "daylight": MAX_KELVIN,  # brought into the bounds: the step goes that way
        "plain": None,
    }
    assert MIN_KELVIN == 2000


def test_dimmer_and_brighter_within_bounds_and_dark_stays_dark(
    library: Library, classic: Routine
) -> None:
    _, dimmer = adapt(classic, library.scenes, sam(brightness="dimmer"))
    assert dimmer["effleurage"].lights.brightness == 17.5  # 25 x 0.7
    assert dimmer["rest"].lights.brightness == 4.2  # 6 x 0.7
    _, brighter = adapt(classic, library.scenes, sam(brightness="brighter"))
    assert brighter["friction"].lights.brightness == 49.4  # 38 x 1.3
    assert brighter["wake"].lights.brightness == MAX_BRIGHTNESS  # 55 x 1.3 = 71.5

    scenes = {
        "dark": lit("dark", brightness=0),
        "off": lit("off", on=False, brightness=30),
        "faint": lit("faint", brightness=2.5),
        "glow": lit("glow", brightness=1),
        "bright": lit("bright", brightness=90),
    }
    r = routine(*(stage(name, 60) for name in scenes))
    for preference in ("dimmer", "brighter"):
        _, out = adapt(r, scenes, sam(brightness=preference))
        assert out["dark"].lights.brightness == 0
        assert out["dark"].lights.target().on is False
        assert out["off"].lights == scenes["off"].lights
    _, out = adapt(r, scenes, sam(brightness="dimmer"))
    assert out["faint"].lights.brightness == MIN_BRIGHTNESS  # 1.75 -> 2
    assert out["glow"].lights.brightness == 1  # below the bound already: not raised
    assert out["bright"].lights.brightness == 63
    _, out = adapt(r, scenes, sam(brightness="brighter"))
    assert out["bright"].lights.brightness == 90  # above the bound already: not dimmed
    assert out["glow"].lights.brightness == MIN_BRIGHTNESS  # 1.3 -> 2
    assert out["faint"].lights.brightness == 3.2


# --- adapt: guidance -----------------------------------------------------------------


def test_guidance_names_pressure_areas_and_last_time(library: Library, classic: Routine) -> None:
    profile = sam(
        pressure="medium",
        focus=["shoulders", "upper back"],
        avoid=["lower back"],
        unmatched_areas=UnmatchedAreas(avoid=["left knee"]),
        stage_pressure={"petrissage": "firm"},
        last_feedback={"petrissage": "firmer", "effleurage": "right"},
        favourite_stage="friction",
    )
    adapted, _ = adapt(classic, library.scenes, profile)
    petrissage = adapted.stage("petrissage").guidance
    assert petrissage.pressure is not None
    assert petrissage.pressure.startswith("Use firm pressure for Sam here.")
    assert "Last time: firmer on petrissage." in petrissage.pressure
    assert petrissage.pressure.endswith(classic.stage("petrissage").guidance.pressure or "")
    assert petrissage.summary.endswith(
        "Sam would like extra time on the shoulders and upper back: give them at least half "
        "of this stage."
    )
    # The kneading of the lower back is left out, the strokes that join it all up rewritten.
    written = classic.stage("petrissage").guidance.texts
    assert petrissage.texts == [
        *written[:2],
        *written[3:5],
        "Long, slow, gliding strokes with flat, relaxed hands over the upper back and "
        "shoulders only.",
    ]
    assert petrissage.caution is not None
    assert petrissage.caution.endswith("Sam asked you to avoid: lower back and left knee.")

    effleurage = adapted.stage("effleurage").guidance
    assert effleurage.pressure is not None
    assert "Use medium pressure for Sam here." in effleurage.pressure
    assert "Last time: effleurage was just right." in effleurage.pressure

    friction = adapted.stage("friction").guidance
    assert friction.pressure is not None and "only where welcome" in friction.pressure
    assert "Sam's favourite part" in friction.summary

    prepare = adapted.stage("prepare").guidance
    assert prepare.pressure is not None
    assert "Sam likes medium pressure in general." in prepare.pressure
    assert "Last time: firmer on petrissage and effleurage was just right." in prepare.pressure
    assert "Their favourite so far is friction." in prepare.pressure


def test_caution_keeps_the_routine_text_and_adds_the_areas_to_avoid(
    library: Library, classic: Routine
) -> None:
    profile = sam(avoid=["lower back"], unmatched_areas=UnmatchedAreas(avoid=["left shoulder"]))
    adapted, _ = adapt(classic, library.scenes, profile)
    for original, new in zip(classic.stages, adapted.stages, strict=True):
        caution = new.guidance.caution
        assert caution is not None
        assert caution.startswith(original.guidance.caution or "")
        assert caution.endswith("Sam asked you to avoid: lower back and left shoulder.")
    # Without areas to avoid the caution is exactly the routine's.
    plain, _ = adapt(classic, library.scenes, sam(focus=["feet"]))
    assert [s.guidance.caution for s in plain.stages] == [
        s.guidance.caution for s in classic.stages
    ]


def test_the_prepare_stage_names_oil_scent_music_and_notes(
    library: Library, classic: Routine
) -> None:
    profile = Profile(
        name="alex",  # no display name: the id is used
        oil="sweet almond",
        scent="lavender",
        music="rain sounds, no vocals",
        notes="Cold feet: an extra blanket.",
    )
    prepare = adapt(classic, library.scenes, profile)[0].stage("prepare").guidance
    assert prepare.texts[0] == (
        "For alex: oil: sweet almond; scent: lavender; music: rain sounds, no vocals."
    )
    assert prepare.texts[1] == "Notes about alex: Cold feet: an extra blanket."
    assert prepare.steps[2:] == classic.stage("prepare").guidance.steps
    # Other stages do not repeat them.
    assert adapt(classic, library.scenes, profile)[0].stage("petrissage").guidance.texts == (
        classic.stage("petrissage").guidance.texts
    )


def test_stages_without_hands_get_no_pressure_line(library: Library, classic: Routine) -> None:
    adapted, _ = adapt(classic, library.scenes, sam(pressure="firm", focus=["shoulders"]))
    for name in ("rest", "wake"):
        assert adapted.stage(name).guidance.pressure is None
        assert adapted.stage(name).guidance.texts == classic.stage(name).guidance.texts


@pytest.mark.parametrize("overall", PRESSURES)
@pytest.mark.parametrize("learned", [*PRESSURES, None])
def test_friction_is_never_firmer_than_the_overall_preference(
    library: Library, classic: Routine, overall: Pressure, learned: Pressure | None
) -> None:
    profile = sam(pressure=overall, stage_pressure={"friction": learned} if learned else {})
    got = session_pressure(profile, classic.stage("friction"))
    assert PRESSURES.index(got) <= PRESSURES.index(overall)
    if learned is not None:
        assert PRESSURES.index(got) <= PRESSURES.index(learned)
    words = {"soft": "a soft touch", "medium": "medium pressure", "firm": "firm pressure"}
    text = adapted_stage(classic, library.scenes, profile, "friction").guidance.pressure
    assert text is not None
    assert text.startswith(f"At most {words[got]} for Sam here")
    assert "only where welcome" in text


def test_friction_is_recognised_by_its_scene_too() -> None:
    r = routine(stage("knots", 60, scene="friction"))
    profile = sam(pressure="soft", stage_pressure={"knots": "firm"})
    assert session_pressure(profile, r.stage("knots")) == "soft"


def test_opening_and_closing_strokes_stay_light_until_taught(classic: Routine) -> None:
    firm = sam(pressure="firm")
    assert session_pressure(firm, classic.stage("effleurage")) == "medium"
    assert session_pressure(firm, classic.stage("closing")) == "soft"
    assert session_pressure(firm, classic.stage("petrissage")) == "firm"
    taught = sam(pressure="firm", stage_pressure={"effleurage": "firm", "closing": "medium"})
    assert session_pressure(taught, classic.stage("effleurage")) == "firm"
    assert session_pressure(taught, classic.stage("closing")) == "medium"
    assert session_pressure(sam(pressure="soft"), classic.stage("effleurage")) == "soft"


# --- learn ---------------------------------------------------------------------------


def said(hints: dict[str, Any], favourite: str | None = None, rating: int = 4) -> Feedback:
    return Feedback(rating=rating, pressure=hints, favourite_stage=favourite)


def test_firmer_steps_up_and_stays_firm(classic: Routine) -> None:
    profile = sam(pressure="soft")
    seen = []
    for _ in range(4):
        profile = learn(profile, said({"petrissage": "firmer"}), classic)
        seen.append(profile.stage_pressure["petrissage"])
    assert seen == ["medium", "firm", "firm", "firm"]
    assert profile.sessions == 4
    assert profile.pressure == "soft"  # the overall pressure is theirs to set


def test_softer_steps_down_and_stays_soft(classic: Routine) -> None:
    profile = sam(pressure="firm")
    seen = []
    for _ in range(4):
        profile = learn(profile, said({"petrissage": "softer"}), classic)
        seen.append(profile.stage_pressure["petrissage"])
    assert seen == ["medium", "soft", "soft", "soft"]


def test_right_keeps_it_or_records_what_they_had(classic: Routine) -> None:
    profile = learn(sam(pressure="firm"), said({"petrissage": "right"}), classic)
    assert profile.stage_pressure == {"petrissage": "firm"}  # from the overall pressure
    profile = learn(
        sam(pressure="firm", stage_pressure={"petrissage": "soft"}),
        said({"petrissage": "right", "closing": "right"}),
        classic,
    )
    assert profile.stage_pressure == {"petrissage": "soft", "closing": "soft"}


def test_learned_friction_never_passes_the_overall_pressure(classic: Routine) -> None:
    profile = learn(sam(pressure="medium"), said({"friction": "firmer"}), classic)
    assert profile.stage_pressure["friction"] == "medium"
    assert profile.last_feedback == {"friction": "firmer"}
    profile = learn(profile, said({"friction": "softer"}), classic)
    assert profile.stage_pressure["friction"] == "soft"


def test_last_feedback_is_replaced_and_the_input_is_left_alone(classic: Routine) -> None:
    before = sam(last_feedback={"friction": "softer"}, stage_pressure={"friction": "soft"})
    dump = before.model_dump()
    after = learn(before, said({"petrissage": "firmer"}), classic)
    assert after.last_feedback == {"petrissage": "firmer"}
    assert after.stage_pressure == {"friction": "soft", "petrissage": "firm"}
    assert before.model_dump() == dump
    assert learn(after, said({}), classic).last_feedback == {}


def test_the_favourite_grows_by_ten_percent_and_caps(classic: Routine) -> None:
    # petrissage is 15 min in the routine: +10 % each time (to 0.01 min), then 1.5x: 22.5.
    profile = sam()
    lengths = []
    for _ in range(6):
        profile = learn(profile, said({}, favourite="petrissage"), classic)
        lengths.append(profile.stage_minutes["petrissage"])
    assert lengths == [16.5, 18.15, 19.96, 21.96, 22.5, 22.5]
    assert profile.favourite_stage == "petrissage"


def test_the_favourite_grows_from_their_own_length(classic: Routine) -> None:
    # Friction is 3 min in the routine: the favourite grows to 1.5x, 4.5 min, at most.
    grown = learn(sam(stage_minutes={"friction": 4}), said({}, favourite="friction"), classic)
    assert grown.stage_minutes["friction"] == 4.4
    # A length they set longer than the cap is theirs: the favourite never shrinks it.
    long = learn(sam(stage_minutes={"friction": 5}), said({}, favourite="friction"), classic)
    assert long.stage_minutes["friction"] == 5
    # An untimed favourite is remembered without a length.
    prep = learn(sam(), said({}, favourite="prepare"), classic)
    assert (prep.favourite_stage, prep.stage_minutes) == ("prepare", {})


def test_no_favourite_named_keeps_the_old_one_and_rating_changes_nothing(
    classic: Routine,
) -> None:
    profile = sam(favourite_stage="friction", pressure="firm")
    after = learn(profile, said({}, rating=1), classic)
    assert after.favourite_stage == "friction"
    assert after.pressure == "firm"
    assert after.stage_minutes == {}
    assert after.sessions == 1


def test_only_the_stages_reached_are_learned(classic: Routine) -> None:
    before = sam(pressure="medium", favourite_stage="closing")
    feedback = said({"effleurage": "firmer", "friction": "firmer"}, favourite="friction")
    after = learn(before, feedback, classic, reached=["prepare", "effleurage", "petrissage"])
    assert after.stage_pressure == {"effleurage": "firm"}
    assert after.last_feedback == {"effleurage": "firmer"}  # what is quoted next time
    assert after.favourite_stage == "closing"  # a stage never reached is no favourite
    assert after.stage_minutes == {}
    assert after.sessions == 1
    # Without `reached` (a caller that knows no better) every stage counts, as before.
    assert learn(before, feedback, classic).stage_pressure.keys() == {"effleurage", "friction"}
    # An unknown stage is still a NotFound, reached or not.
    with pytest.raises(NotFound, match="'feet'"):
        learn(before, said({"feet": "firmer"}), classic, reached=["feet"])


def test_learn_rejects_an_unknown_stage(classic: Routine) -> None:
    with pytest.raises(NotFound, match="'feet'"):
        learn(sam(), said({"feet": "firmer"}), classic)


def test_feedback_then_learn_then_adapt_says_what_was_learned(
    library: Library, classic: Routine
) -> None:
    profile = sam(pressure="medium", focus=["shoulders"])
    feedback = Feedback.model_validate(
        {
            "rating": 5,
            "pressure": {"petrissage": "firmer", "friction": "softer"},
            "favourite_stage": "petrissage",
            "notes": "Lovely.",
        }
    )
    profile = learn(profile, feedback, classic)
    # The store keeps it as JSON in between.
    profile = Profile.model_validate(profile.model_dump(mode="json"))
    adapted, _ = adapt(classic, library.scenes, profile)

    petrissage = adapted.stage("petrissage")
    assert petrissage.guidance.pressure is not None
    assert "Use firm pressure for Sam here. Last time: firmer on petrissage." in (
        petrissage.guidance.pressure
    )
    assert "Sam's favourite part" in petrissage.guidance.summary
    assert petrissage.duration == 16.5 * 60

    friction = adapted.stage("friction").guidance.pressure
    assert friction is not None
    assert friction.startswith("At most a soft touch for Sam here")
    assert "Last time: softer on friction." in friction

    prepare = adapted.stage("prepare").guidance.pressure
    assert prepare is not None
    assert "last time: firmer on petrissage and softer on friction" in prepare.lower()
