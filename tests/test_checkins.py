"""Pressure check-ins, the pure core: when they come, what an answer changes, what is learned.

Every built-in routine (and a user's) on a fake clock; the pressure after answers over a
grid of pressure levels, health answers and today's answers.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ambiance.core.areas import AREAS
from ambiance.core.checkins import (
    CHANGE_AFTER,
    FIRST_AFTER,
    GUIDANCE,
    PROMPTS,
    TIGHT_SPOT_AFTER,
    Answer,
    NoCheckin,
    pressure_for,
    schedule,
    technique,
)
from ambiance.core.engine import Session
from ambiance.core.fitting import fit, reach, roles
from ambiance.core.profiles import (
    PRESSURES,
    DayCheck,
    Feedback,
    HealthAnswers,
    Pressure,
    Profile,
    adapt,
    learn,
    learn_checkins,
)
from ambiance.core.scenes import Library, Routine, Scene, builtin_scenes_dir, load_library
from ambiance.core.shaping import NothingLeft, shape
from ambiance.errors import ConfigError, InvalidInput
from ambiance.infra.clock import FakeClock

LIBRARY = load_library([builtin_scenes_dir()])
RANK = {p: i for i, p in enumerate(PRESSURES)}
# The routine without a massage: nothing to ask about.
NO_HANDS = {"quiet-room"}
HEALTH: list[dict[str, Any]] = [
    {},
    {"pregnant": True},
    {"blood_thinners": True},
    {"dvt_history": True},
    {"osteoporosis": True},
    {"varicose_veins": True},
    {"recent_injury": ["shoulders"]},
    {"skin_condition": ["lower_back"]},
    {"nut_allergy": True},
]


def massages(library: Library = LIBRARY) -> list[Routine]:
    return [r for r in library.routines.values() if r.name not in NO_HANDS]


def session_for(
    routine: Routine,
    profile: Profile | None = None,
    today: DayCheck | None = None,
    minutes: float | None = None,
    library: Library = LIBRARY,
) -> tuple[Session, FakeClock]:
    """A session as the room makes one: adapted, fitted, with its pressure choices."""
    chosen: Routine = routine
    scenes: dict[str, Scene] = {}
    if profile is not None or today is not None:
        chosen, scenes = adapt(routine, library.scenes, profile, today)
    if minutes is not None:
        chosen = fit(chosen, minutes, written=routine)
    pressure = pressure_for(routine, chosen, profile, today)
    clock = FakeClock()
    profile_name = profile.name if profile is not None else None
    session = Session(chosen, clock, profile=profile_name, scenes=scenes, pressure=pressure)
    session.start()
    return session, clock


def reach_checkin(session: Session, clock: FakeClock, stage: str) -> str:
    """Go to `stage` and let its first check-in fall due; return its id."""
    session.goto(stage)
    at = session.checkins.next_at(stage)
    assert at is not None, f"no check-in in {stage}"
    clock.advance(at)
    events = session.tick()
    asked = [e for e in events if e.kind == "checkin.asked"]
    assert asked, events
    return str(asked[0].data["id"])


def user_library(tmp_path: Path, text: str) -> Library:
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "mine.yaml").write_text(text)
    return load_library([builtin_scenes_dir(), folder])


# --- when -------------------------------------------------------------------------------


def test_every_built_in_routine_has_two_to_four_at_sensible_moments() -> None:
    assert massages(), "no built-in massage routine"
    for routine in massages():
        planned = schedule(routine)
        assert 2 <= len(planned) <= 4, (routine.name, planned)
        stages = {s.name: s for s in routine.stages}
        hands = [
            s for s in routine.stages if technique(s) in ("effleurage", "petrissage", "friction")
        ]
        parts = roles(routine)
        # Early in the first strokes: the first stage where hands are at work, within a
        # minute (and a third of the stage).
        first = planned[0]
        assert first.stage == hands[0].name and first.kind == "first"
        assert first.at <= FIRST_AFTER
        for p in planned:
            stage = stages[p.stage]
            assert parts.get(p.stage) != "ending", p  # the closing strokes are light
            assert p.at <= (stage.duration or 0) / 3 + 0.05 or p.kind == "again", p
            assert p.prompt == PROMPTS[p.kind] and "1 to 10" in p.prompt
            if p.kind == "tight_spot":
                assert technique(stage) == "friction" and p.at <= TIGHT_SPOT_AFTER
            if p.kind == "change":
                before = [s for s in hands if routine.stages.index(s) < routine.stages.index(stage)]
                assert technique(before[-1]) != technique(stage), p
                assert p.at <= CHANGE_AFTER
        # Each change of technique outside the ending is asked about (up to four in all).
        changes = [
            s.name
            for a, s in itertools.pairwise(hands)
            if technique(a) != technique(s) and parts.get(s.name) != "ending"
        ]
        if len(changes) + 1 <= 4:
            assert set(changes) <= {p.stage for p in planned}, (routine.name, changes)
        assert len({p.id for p in planned}) == len(planned)


def test_the_classic_routine_asks_in_the_strokes_the_kneading_and_the_knots() -> None:
    planned = schedule(LIBRARY.routine("classic"))
    assert [(p.stage, p.kind, p.at) for p in planned] == [
        ("effleurage", "first", 60.0),
        ("petrissage", "change", 45.0),
        ("friction", "tight_spot", 30.0),
    ]
    assert PROMPTS["first"] == "How is the pressure, 1 to 10? More, less or the same?"
    assert "held breath, tensing or pulling away" in GUIDANCE
    assert "ease off without being asked" in GUIDANCE


def test_the_room_without_a_massage_asks_nothing() -> None:
    for name in NO_HANDS:
        assert schedule(LIBRARY.routine(name)) == []


def test_every_routine_adapted_and_fitted_keeps_two_to_four() -> None:
    """Over every built-in massage and a grid of profiles (each avoided area, each health
    answer, each pressure level, lengths from the shortest to 90 minutes)."""
    muscles = [a for a, area in AREAS.items() if not area.caution]
    for routine in massages():
        found = reach(routine)
        lengths = sorted({found.shortest, 20.0, found.own, 45.0, found.longest})
        grid = itertools.product([[], *([a] for a in muscles)], HEALTH, PRESSURES)
        for avoid, health, pressure in grid:
            profile = Profile(
                name="sam", pressure=pressure, avoid=avoid, health=HealthAnswers(**health)
            )
            chosen, _ = adapt(routine, LIBRARY.scenes, profile)
            if all(technique(stage) is None for stage in chosen.stages):
                # Nothing of the massage is left for them (legs and feet, varicose veins
                # in the legs): the session is refused, not started without check-ins.
                with pytest.raises(NothingLeft):
                    shape(routine, LIBRARY.scenes, profile, None, None)
                continue
            for minutes in lengths:
                try:
                    fitted = fit(chosen, minutes, written=routine)
                except InvalidInput:  # stages left out: the rest cannot take that long
                    continue
                planned = schedule(fitted)
                assert 2 <= len(planned) <= 4, (routine.name, avoid, health, minutes)
                for p in planned:
                    stage = fitted.stage(p.stage)
                    assert 0 < p.at < (stage.duration or 0), p


def test_a_users_routine_gets_them_without_a_word_about_check_ins(tmp_path: Path) -> None:
    library = user_library(
        tmp_path,
        """
routines:
  feet-first:
    stages:
      - name: settle
        scene: prepare
        duration: null
        guidance: {summary: Get comfortable.}
      - name: glide-feet
        scene: effleurage
        duration: 6m
        guidance:
          summary: Long strokes.
          steps:
            - {text: Glide over the feet., areas: [feet], technique: effleurage}
      - name: knead-calves
        scene: petrissage
        duration: 8m
        guidance:
          summary: Kneading.
          steps:
            - {text: Cover the legs., areas: []}
            - {text: Knead the calves., areas: [calves], technique: petrissage}
      - name: more-kneading
        scene: petrissage
        duration: 4m
        guidance:
          summary: More.
          steps:
            - {text: Knead the thighs., areas: [thighs], technique: petrissage}
      - name: quiet
        scene: rest
        duration: 2m
        guidance: {summary: Rest.}
  one-long-glide:
    stages:
      - name: glide
        scene: effleurage
        duration: 12m
        guidance:
          summary: Only long strokes.
          steps:
            - Glide slowly over the back and the shoulders.
""",
    )
    planned = schedule(library.routine("feet-first"))
    assert [(p.stage, p.kind, p.at) for p in planned] == [
        ("glide-feet", "first", 60.0),
        ("knead-calves", "change", 45.0),
    ]
    # One technique only, and a plain-text step: asked early, and again later on.
    planned = schedule(library.routine("one-long-glide"))
    assert [(p.id, p.kind, p.at) for p in planned] == [
        ("glide-1", "first", 60.0),
        ("glide-2", "again", 480.0),
    ]


def test_a_stage_may_say_its_own_check_in_in_its_file(tmp_path: Path) -> None:
    library = user_library(
        tmp_path,
        """
routines:
  mine:
    stages:
      - name: glide
        scene: effleurage
        duration: 10m
        checkin: false
        guidance:
          summary: Long strokes.
          steps: [{text: Glide over the back., areas: [upper_back], technique: effleurage}]
      - name: knead
        scene: petrissage
        duration: 10m
        checkin: {after: 2m, prompt: "Is this kneading all right, 1 to 10?"}
        guidance:
          summary: Kneading.
          steps: [{text: Knead the shoulders., areas: [shoulders], technique: petrissage}]
      - name: glide-again
        scene: effleurage
        duration: 5m
        checkin: true
        guidance:
          summary: Long strokes.
          steps: [{text: Glide over the back., areas: [upper_back], technique: effleurage}]
      - name: still
        scene: rest
        duration: 3m
        checkin: {after: 30s}
        guidance: {summary: Hands still on the back.}
""",
    )
    routine = library.routine("mine")
    planned = schedule(routine)
    assert [(p.stage, p.kind, p.at, p.prompt) for p in planned] == [
        ("knead", "change", 120.0, "Is this kneading all right, 1 to 10?"),
        ("glide-again", "change", 45.0, PROMPTS["change"]),
        ("still", "own", 30.0, PROMPTS["own"]),  # asked for, where no hands show at work
    ]
    # Its own time follows a stage made shorter: never past half of it.
    short = fit(routine, 10, written=routine)
    knead = short.stage("knead")
    (own,) = [p for p in schedule(short) if p.stage == "knead"]
    assert own.at == min(120.0, round((knead.duration or 0) / 2, 1)) < 120.0


@pytest.mark.parametrize(
    ("checkin", "problem"),
    [
        ("{after: 7m}", "stages[0].checkin: after: 7m is not within the stage (6m long)"),
        ("{after: -5}", "stages[0].checkin.after: a duration must be more than 0"),
        ('{prompt: "   "}', "stages[0].checkin.prompt: String should match pattern"),
        ("{when: 1m}", "stages[0].checkin.when: unknown field"),
        ("sometimes", "stages[0].checkin: write false (no check-in in this stage), true"),
        ("{ask: false, after: 1m}", "stages[0].checkin: a stage without a check-in"),
    ],
)
def test_a_bad_check_in_in_a_file_names_the_file_and_the_field(
    tmp_path: Path, checkin: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        user_library(
            tmp_path,
            f"""
routines:
  mine:
    stages:
      - name: glide
        scene: effleurage
        duration: 6m
        checkin: {checkin}
        guidance: {{summary: Long strokes.}}
""",
        )
    text = "\n".join(caught.value.problems)
    assert "mine.yaml: routines.mine." + problem in text, text


def test_more_than_four_check_ins_of_their_own_are_refused(tmp_path: Path) -> None:
    stages = "".join(
        f"""
      - name: s{i}
        scene: effleurage
        duration: 5m
        checkin: true
        guidance: {{summary: Strokes.}}"""
        for i in range(5)
    )
    with pytest.raises(ConfigError) as caught:
        user_library(tmp_path, f"routines:\n  mine:\n    stages:{stages}\n")
    (problem,) = caught.value.problems
    assert "mine.yaml: routines.mine.stages: 5 stages ask for a check-in" in problem
    assert "at most 4" in problem


# --- in the session's timeline ----------------------------------------------------------


def test_a_check_in_falls_due_in_the_stages_own_time_and_waits_through_a_pause() -> None:
    session, clock = session_for(LIBRARY.routine("classic"))
    session.next()  # ready: the long strokes
    start = clock.now()
    assert session.next_deadline() == start + FIRST_AFTER
    clock.advance(20)
    session.pause()
    assert session.next_deadline() is None
    clock.advance(300)  # a long pause: the stage's time stands still
    assert session.tick() == []
    session.resume()
    assert session.next_deadline() == clock.now() + FIRST_AFTER - 20
    clock.advance(FIRST_AFTER - 20 - 1)
    assert session.tick() == []
    assert session.view().checkin is None
    clock.advance(1)
    (asked,) = session.tick()
    assert (asked.kind, asked.stage, asked.data["id"]) == (
        "checkin.asked",
        "effleurage",
        "effleurage-1",
    )
    view = session.view().checkin
    assert view is not None
    assert (view.id, view.stage, view.asked_at, view.answered) == (
        "effleurage-1",
        "effleurage",
        start + 300 + FIRST_AFTER,  # a minute of its own time, and the pause
        None,
    )
    assert view.prompt == PROMPTS["first"] and view.guidance == GUIDANCE
    # Next, the stage's end: the check-in asks nothing more meanwhile.
    assert session.next_deadline() == session.deadline


def test_the_times_follow_a_routine_fitted_to_the_evening() -> None:
    classic = LIBRARY.routine("classic")
    found = reach(classic)
    for minutes in sorted({found.shortest, 15.0, 20.0, found.own, 60.0, found.longest}):
        session, clock = session_for(classic, minutes=minutes)
        lengths = {s.name: s.duration for s in session.routine.stages}
        for p in session.checkins.planned:
            assert p.at == round(min(_usual(p.kind), (lengths[p.stage] or 0) / 3), 1), p
        # Walk the session on the clock alone: each check-in asked at its time in its stage.
        session.next()
        asked: list[tuple[str, float]] = []
        while not session.ended:
            due = session.next_deadline()
            assert due is not None
            clock.advance(due - clock.now())
            for event in session.tick():
                if event.kind == "checkin.asked":
                    asked.append((str(event.data["id"]), clock.now() - session.stage_started_at))
        expected = [(p.id, p.at) for p in session.checkins.planned]
        assert [(i, round(t, 1)) for i, t in asked] == expected, minutes


def _usual(kind: str) -> float:
    return {"first": FIRST_AFTER, "change": CHANGE_AFTER, "tight_spot": TIGHT_SPOT_AFTER}[kind]


def test_an_unanswered_check_in_is_dropped_at_the_stages_end_and_asked_again_on_return() -> None:
    session, clock = session_for(LIBRARY.routine("classic"), Profile(name="sam"))
    reach_checkin(session, clock, "petrissage")
    events = session.next()
    assert [e.kind for e in events] == ["checkin.dropped", "stage.changed"]
    assert events[0].data["id"] == "petrissage-1" and events[0].stage == "petrissage"
    assert session.view().checkin is None
    assert session.checkins.given == [] and session.checkins.learned() == {}
    assert all(p.answer is None for p in session.view().checkins)
    # Back in the kneading, it is asked again: it was never answered.
    assert reach_checkin(session, clock, "petrissage") == "petrissage-1"
    session.answer("same")
    session.previous()
    session.next()  # answered once: not again
    assert session.checkins.next_at("petrissage") is None
    # The end drops an open one too.
    reach_checkin(session, clock, "friction")
    kinds = [e.kind for e in session.stop()]
    assert kinds == ["checkin.dropped", "session.ended"]
    assert session.view().checkin is None


def test_a_stage_set_by_another_app_with_time_gone_does_not_ask_what_it_passed() -> None:
    session, clock = session_for(LIBRARY.routine("classic"))
    effleurage = LIBRARY.routine("classic").stage("effleurage").duration or 0
    session.set_stage("effleurage", remaining=effleurage - 90)  # 90 s in already
    assert session.checkins.next_at("effleurage") is None
    clock.advance(120)
    assert session.tick() == []
    session.set_stage("petrissage", remaining=None)
    clock.advance(CHANGE_AFTER)
    assert [e.kind for e in session.tick()] == ["checkin.asked"]


def test_answering_with_none_open_is_refused_and_names_it() -> None:
    session, clock = session_for(LIBRARY.routine("classic"))
    session.next()
    with pytest.raises(NoCheckin) as refused:
        session.answer("softer")
    assert refused.value.code == "no_checkin_open"
    assert "no check-in is open" in refused.value.message
    assert "'effleurage-1', 60 s into 'effleurage'" in refused.value.message
    clock.advance(FIRST_AFTER)
    session.tick()
    with pytest.raises(NoCheckin, match="'petrissage-1' is not the one open: 'effleurage-1' is"):
        session.answer("softer", "petrissage-1")
    session.answer("softer", "effleurage-1")
    with pytest.raises(NoCheckin, match=r"'effleurage-1' was answered \(softer\)"):
        session.answer("firmer")
    assert len(session.checkins.given) == 1


def test_check_ins_survive_a_restart() -> None:
    session, clock = session_for(LIBRARY.routine("classic"), Profile(name="sam"))
    reach_checkin(session, clock, "effleurage")
    session.answer("softer")
    reach_checkin(session, clock, "petrissage")
    clock.advance(5)
    session.pause()
    back = Session.from_record(session.record(), clock)
    assert back.view() == session.view()
    assert back.checkins.learned() == session.checkins.learned()
    back.resume()
    assert back.view().checkin is not None and back.view().checkin.id == "petrissage-1"  # type: ignore[union-attr]
    back.answer("firmer")
    assert back.view().stage.pressure_now == "medium"


def test_a_session_stored_before_check_ins_is_picked_up_with_its_stages_time() -> None:
    session, clock = session_for(LIBRARY.routine("classic"))
    session.next()
    started = clock.now()
    record = session.record()
    del record["checkins"]  # as stored before schema v6
    del record["routine_data"]["pressure"]
    clock.advance(10)
    back = Session.from_record(record, clock)
    assert back.next_deadline() == started + FIRST_AFTER  # its time counted from its start
    clock.advance(FIRST_AFTER - 10)
    assert [e.kind for e in back.tick()] == ["checkin.asked"]
    back.answer("softer")  # without pressure choices: recorded, the wording says so
    assert back.checkins.learned() == {}
    assert (back.view().stage.guidance.pressure or "").startswith("They asked for softer")


# --- what an answer changes -------------------------------------------------------------


def pressure_text(session: Session, stage: str) -> str:
    return session.checkins.guidance(session.routine.stage(stage)).pressure or ""


def test_softer_changes_this_stage_and_the_later_ones_at_once() -> None:
    sam = Profile(name="sam", display_name="Sam", pressure="firm")
    session, clock = session_for(LIBRARY.routine("classic"), sam)
    reach_checkin(session, clock, "petrissage")
    before = session.view().stage
    assert before.pressure_now == "firm"
    assert (
        before.guidance.pressure is not None
        and "Use firm pressure for Sam" in before.guidance.pressure
    )
    (event,) = session.answer("softer")
    assert event.kind == "checkin.answered"
    assert (event.data["answer"], event.data["level"]) == ("softer", "medium")
    stage = session.view().stage
    assert stage.pressure_now == "medium"
    text = stage.guidance.pressure or ""
    assert text.startswith("They asked for softer: lighten a step, to 5-6 of 10.")
    assert "Use medium pressure for Sam here." in text and "firm pressure" not in text
    # The steps' own pressure follows.
    worked = [s for s in stage.guidance.step_details if s.pressure is not None]
    assert worked and all(RANK[s.pressure] <= RANK["medium"] for s in worked)  # type: ignore[index]
    # Later: friction (firm at most for Sam) is lighter too; the closing was soft already.
    assert "Lighter than planned (5-6 of 10)" in pressure_text(session, "friction")
    assert session.checkins.shown("friction") == "medium"
    assert session.checkins.shown("closing") == "soft"
    # What came before stays as it was.
    assert session.checkins.shown("effleurage") == "medium"
    assert session.view().checkin is not None
    assert session.view().checkin.answered == "softer"  # type: ignore[union-attr]


def test_too_much_eases_off_now() -> None:
    sam = Profile(name="sam", display_name="Sam", pressure="medium")
    session, clock = session_for(LIBRARY.routine("classic"), sam)
    reach_checkin(session, clock, "friction")
    session.answer("too_much")
    stage = session.view().stage
    assert stage.pressure_now == "soft"
    assert (stage.guidance.pressure or "").startswith(
        "Ease off now: it was too much. Lighten at once, to 3-4 of 10"
    )
    assert (
        "Lighter than planned (3-4 of 10): it was too much earlier."
        in pressure_text(session, "closing")
        or session.checkins.shown("closing") == "soft"
    )
    # Too much at the lightest already: as light as you can, or leave it out.
    soft = Profile(name="ann", pressure="soft")
    session, clock = session_for(LIBRARY.routine("classic"), soft)
    reach_checkin(session, clock, "effleurage")
    session.answer("too_much")
    assert pressure_text(session, "effleurage").startswith(
        "Ease off now: it was too much. Go as light as you can"
    )
    assert session.view().stage.pressure_now == "soft"


def test_same_keeps_it_and_firmer_steps_up() -> None:
    session, clock = session_for(LIBRARY.routine("classic"), Profile(name="sam"))
    reach_checkin(session, clock, "effleurage")
    session.answer("same")
    assert pressure_text(session, "effleurage").startswith("They said the pressure is right")
    assert session.checkins.shown("effleurage") == "medium"
    reach_checkin(session, clock, "petrissage")
    session.answer("firmer")
    assert pressure_text(session, "petrissage").startswith(
        "They asked for firmer: a step firmer, to 7 of 10, leaning in with your body weight"
    )
    assert session.checkins.shown("petrissage") == "firm"
    # Friction never passes their overall pressure; the closing never gets firmer.
    assert session.checkins.shown("friction") == "medium"
    assert session.checkins.shown("closing") == "soft"


def test_a_guest_without_a_profile_gets_the_wording_too() -> None:
    session, clock = session_for(LIBRARY.routine("taster"))
    reach_checkin(session, clock, "effleurage")
    written = LIBRARY.routine("taster").stage("effleurage").guidance.pressure
    assert session.view().stage.guidance.pressure == written
    session.answer("softer")
    text = session.view().stage.guidance.pressure or ""
    assert text.startswith("They asked for softer") and "Use a soft touch for them here." in text


def answer_everything(session: Session, clock: FakeClock, answers: list[Answer]) -> None:
    """Answer every check-in of the session in turn, cycling through `answers`."""
    for index, planned in enumerate(session.checkins.planned):
        if session.stage.name != planned.stage:
            session.goto(planned.stage)
        at = session.checkins.next_at(planned.stage)
        if at is None:
            continue
        clock.advance(max(0.0, at - session.stage_time(clock.now())))
        session.tick()
        session.answer(answers[index % len(answers)])


CAPS: list[tuple[dict[str, Any], DayCheck | None]] = [
    ({}, None),
    ({"blood_thinners": True}, None),
    ({"osteoporosis": True}, None),
    ({"dvt_history": True}, None),
    ({"pregnant": True}, None),
    ({}, DayCheck(painkillers_or_alcohol=True)),
    ({"pregnant": True}, DayCheck(sore=["shoulders"])),
]


@pytest.mark.parametrize(("health", "today"), CAPS)
@pytest.mark.parametrize("pressure", PRESSURES)
@pytest.mark.parametrize(
    "answers", [["firmer"], ["softer"], ["too_much"], ["same"], ["firmer", "too_much", "firmer"]]
)
def test_answers_never_pass_a_cap(
    health: dict[str, Any], today: DayCheck | None, pressure: Pressure, answers: list[Answer]
) -> None:
    """Over every massage, pressure level, health answer and today's answer: whatever the
    answers, no stage is firmer than its caps and no step than its area's."""
    for routine in massages():
        profile = Profile(name="sam", pressure=pressure, health=HealthAnswers(**health))
        session, clock = session_for(routine, profile, today)
        before = {s.name: session.checkins.shown(s.name) for s in session.routine.stages}
        answer_everything(session, clock, answers)
        caps = _caps(health, today)
        for stage in session.routine.stages:
            shown = session.checkins.shown(stage.name)
            if shown is None:
                continue
            if caps.get("all") is not None:
                assert RANK[shown] <= RANK[caps["all"]], (routine.name, stage.name)
            if "friction" in (stage.name, stage.scene):
                assert RANK[shown] <= RANK[pressure]
            if roles(session.routine).get(stage.name) == "ending":
                assert RANK[shown] <= RANK[before[stage.name] or "firm"]
            line = session.checkins.guidance(stage).pressure or ""
            if caps.get("all") == "soft":  # the line's own level, whatever the answers
                for words in ("medium pressure for", "firm pressure for"):
                    assert f"Use {words}" not in line and f"At most {words}" not in line
            for step in session.checkins.guidance(stage).steps:
                for area in step.areas or ():
                    cap = caps.get(area) or caps.get("all")
                    if step.pressure is not None and cap is not None:
                        assert RANK[step.pressure] <= RANK[cap], (routine.name, stage.name, step)
                    if AREAS[area].caution:
                        assert step.pressure == "soft"
        if answers == ["firmer"] and not caps:  # and without a cap, firmer is firmer
            first = session.checkins.planned[0].stage
            wanted = PRESSURES[min(2, RANK[before[first] or "soft"] + 1)]
            assert session.checkins.shown(first) == wanted, (routine.name, first)


def _caps(health: dict[str, Any], today: DayCheck | None) -> dict[str, Pressure]:
    caps: dict[str, Pressure] = {}
    if health.get("blood_thinners") or health.get("osteoporosis") or health.get("dvt_history"):
        caps["all"] = "soft"
    if today is not None and today.painkillers_or_alcohol:
        caps["all"] = "soft"
    if health.get("pregnant"):
        caps.update(dict.fromkeys(("lower_back", "thighs", "calves"), "soft"))
    return caps


# --- what is learned --------------------------------------------------------------------


def test_the_last_answer_of_each_stage_is_learned_for_next_time() -> None:
    classic = LIBRARY.routine("classic")
    sam = Profile(name="sam", display_name="Sam", pressure="medium")
    session, clock = session_for(classic, sam)
    reach_checkin(session, clock, "effleurage")
    session.answer("softer")
    reach_checkin(session, clock, "petrissage")
    session.answer("firmer")  # soft after the softer, now medium again
    reach_checkin(session, clock, "friction")
    session.answer("too_much")
    taught = session.checkins.learned()
    assert taught == {
        "effleurage": ("soft", "softer"),
        "petrissage": ("medium", "firmer"),
        "friction": ("soft", "softer"),
    }
    learned = learn_checkins(sam, classic, taught)
    assert learned.stage_pressure == {
        "effleurage": "soft",
        "petrissage": "medium",
        "friction": "soft",
    }
    assert learned.last_feedback == {
        "effleurage": "softer",
        "petrissage": "firmer",
        "friction": "softer",
    }
    assert (learned.sessions, learned.pressure) == (sam.sessions, "medium")  # feedback's
    assert sam.stage_pressure == {}  # pure
    # Next time: the strokes start soft, and the guidance says why.
    next_time, _ = session_for(classic, learned)
    assert next_time.checkins.shown("effleurage") == "soft"
    effleurage = next_time.routine.stage("effleurage").guidance.pressure or ""
    assert "Use a soft touch for Sam here." in effleurage
    assert "Last time: softer on effleurage." in effleurage


def test_a_firmer_that_a_cap_held_back_teaches_nothing() -> None:
    classic = LIBRARY.routine("classic")
    sam = Profile(name="sam", pressure="medium")
    session, clock = session_for(classic, sam, DayCheck(painkillers_or_alcohol=True))
    assert "friction" not in {s.name for s in session.routine.stages}  # no deep work today
    # A "same" under today's cap keeps what they like on other days: their own level.
    reach_checkin(session, clock, "effleurage")
    session.answer("same")
    reach_checkin(session, clock, "petrissage")
    session.answer("firmer")
    assert session.checkins.shown("petrissage") == "soft"
    assert pressure_text(session, "petrissage").startswith(
        "They asked for firmer, but this is the most for them here"
    )
    assert session.checkins.learned() == {"effleurage": ("medium", "right")}


def test_feedback_after_the_check_ins_builds_on_what_the_stage_had() -> None:
    """softer at the kneading, then "right" in the feedback: it is the softer they liked."""
    classic = LIBRARY.routine("classic")
    sam = Profile(name="sam", pressure="medium")
    session, clock = session_for(classic, sam)
    reach_checkin(session, clock, "effleurage")
    session.answer("same")
    reach_checkin(session, clock, "petrissage")
    session.answer("softer")
    session.stop()
    at_end = learn_checkins(sam, classic, session.checkins.learned())
    feedback = Feedback(rating=5, pressure={"petrissage": "right"})
    words = session.checkins.words()
    after = learn(at_end, feedback, classic, session.reached, words)
    assert after.stage_pressure["petrissage"] == "soft"
    assert after.stage_pressure["effleurage"] == "medium"
    assert after.last_feedback == {"effleurage": "right", "petrissage": "right"}
    assert after.sessions == 1
    # A feedback word on a stage whose check-in said otherwise starts from what it had.
    firmer = learn(
        at_end, Feedback(rating=4, pressure={"petrissage": "firmer"}), classic, None, words
    )
    assert firmer.stage_pressure["petrissage"] == "medium"
    assert firmer.last_feedback["petrissage"] == "firmer"
