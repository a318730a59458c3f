"""The session state machine, on a fake clock: every command in every state."""

from __future__ import annotations

import pytest

from ambiance.core.engine import Session, Status
from ambiance.errors import Conflict, InvalidInput, NotFound
from ambiance.infra.clock import FakeClock
from tests.helpers import make_library

LIBRARY = make_library()


def start(routine: str = "quick") -> tuple[Session, FakeClock]:
    clock = FakeClock()
    session = Session(LIBRARY.routine(routine), clock)
    session.start()
    return session, clock


def paused() -> tuple[Session, FakeClock]:
    session, clock = start("timed")
    clock.advance(10)
    session.pause()
    return session, clock


def ended(how: str) -> Session:
    session, _ = start()
    if how == "stopped":
        session.stop()
    else:
        session.goto("c")
        session.next()
    return session


def test_start_enters_first_stage_and_reports_events() -> None:
    clock = FakeClock()
    session = Session(LIBRARY.routine("quick"), clock)
    events = session.start()
    assert [e.kind for e in events] == ["session.started", "stage.changed"]
    assert events[1].stage == "prepare"
    assert events[1].data["reason"] == "start"
    assert events[1].data["previous"] is None
    assert session.status is Status.RUNNING
    assert session.started_at == clock.now()


def test_untimed_stage_waits_for_the_giver() -> None:
    session, clock = start()
    assert session.next_deadline() is None
    assert session.stage_remaining(clock.now()) is None
    clock.advance(3600)
    assert session.tick() == []
    assert session.stage.name == "prepare"
    assert session.total_remaining(clock.now()) == 210


def test_timer_advances_stage_by_stage_and_finishes() -> None:
    session, clock = start("timed")
    assert session.stage_remaining(clock.now()) == 60
    clock.advance(59.9)
    assert session.tick() == []
    clock.advance(0.1)
    events = session.tick()
    assert [(e.kind, e.stage, e.data["reason"]) for e in events] == [
        ("stage.changed", "b", "timer")
    ]
    assert session.stage_remaining(clock.now()) == 120
    clock.advance(150)
    events = session.tick()
    assert [e.kind for e in events] == ["stage.changed", "session.ended"]
    assert session.status is Status.FINISHED
    assert events[-1].data["outcome"] == "finished"


def test_a_long_gap_catches_up_with_the_right_time_left() -> None:
    session, clock = start("timed")
    clock.advance(60 + 100)  # stage a ran out, and 100 s of stage b have passed
    events = session.tick()
    assert [e.stage for e in events] == ["b"]
    assert session.stage_started_at == session.started_at + 60
    assert session.stage_remaining(clock.now()) == pytest.approx(20)


def test_a_gap_past_the_end_finishes_at_the_last_deadline() -> None:
    session, clock = start("timed")
    clock.advance(10_000)
    events = session.tick()
    assert [e.kind for e in events] == ["stage.changed", "stage.changed", "session.ended"]
    assert session.ended_at == session.started_at + 210


# --- running ------------------------------------------------------------------------


def test_running_pause_keeps_the_time_left() -> None:
    session, clock = start("timed")
    clock.advance(25)
    events = session.pause()
    assert [e.kind for e in events] == ["session.paused"]
    assert session.status is Status.PAUSED
    assert session.next_deadline() is None
    clock.advance(1000)
    assert session.tick() == []
    assert session.stage_remaining(clock.now()) == 35


def test_running_resume_is_a_conflict() -> None:
    session, _ = start()
    with pytest.raises(Conflict, match="not paused"):
        session.resume()


def test_running_next_previous_goto() -> None:
    session, clock = start()
    session.next()
    assert session.stage.name == "a"
    assert session.next_deadline() == clock.now() + 60
    session.goto("c")
    assert session.stage.name == "c"
    events = session.previous()
    assert session.stage.name == "b"
    assert events[0].data == {
        "previous": "c",
        "reason": "previous",
        "scene": "dark",
        "remaining": 120,
    }


def test_previous_in_first_stage_restarts_it() -> None:
    session, clock = start("timed")
    clock.advance(40)
    session.previous()
    assert session.stage.name == "a"
    assert session.stage_remaining(clock.now()) == 60


def test_next_in_last_stage_finishes() -> None:
    session, _ = start()
    session.goto("c")
    events = session.next()
    assert session.status is Status.FINISHED
    assert events[-1].data["reason"] == "next"


def test_goto_unknown_stage_names_it() -> None:
    session, _ = start()
    with pytest.raises(NotFound, match="'nope'") as info:
        session.goto("nope")
    assert "prepare" in info.value.message


def test_running_extend_moves_the_deadline() -> None:
    session, clock = start("timed")
    clock.advance(50)
    events = session.extend(30)
    assert events[0].kind == "stage.extended"
    assert session.stage_remaining(clock.now()) == 40
    clock.advance(39)
    assert session.tick() == []
    clock.advance(1)
    assert session.tick()[0].stage == "b"


@pytest.mark.parametrize("seconds", [0, -5, 3601])
def test_extend_out_of_range(seconds: float) -> None:
    session, _ = start("timed")
    with pytest.raises(InvalidInput):
        session.extend(seconds)


def test_extend_an_untimed_stage_is_a_conflict() -> None:
    session, _ = start()
    with pytest.raises(Conflict, match="untimed"):
        session.extend(60)


def test_running_stop() -> None:
    session, clock = start()
    events = session.stop()
    assert [e.kind for e in events] == ["session.ended"]
    assert events[0].data == {"outcome": "stopped", "reason": "stop"}
    assert session.ended_at == clock.now()
    assert session.stage_remaining(clock.now()) is None
    assert session.total_remaining(clock.now()) is None


def test_set_stage_follows_the_other_apps_timer() -> None:
    session, clock = start()
    events = session.set_stage("b", remaining=45)
    assert events[0].data["reason"] == "set"
    assert session.stage_remaining(clock.now()) == 45
    clock.advance(45)
    assert session.tick()[0].stage == "c"


def test_set_stage_without_remaining_takes_the_full_duration() -> None:
    session, clock = start()
    session.set_stage("a")
    assert session.stage_remaining(clock.now()) == 60


@pytest.mark.parametrize("remaining", [0, -1, 86401])
def test_set_stage_rejects_bad_remaining(remaining: float) -> None:
    session, _ = start()
    with pytest.raises(InvalidInput):
        session.set_stage("a", remaining=remaining)


def test_set_stage_unknown() -> None:
    session, _ = start()
    with pytest.raises(NotFound):
        session.set_stage("zzz")


# --- paused -------------------------------------------------------------------------


def test_paused_pause_is_a_conflict() -> None:
    session, _ = paused()
    with pytest.raises(Conflict, match="paused already"):
        session.pause()


def test_paused_resume_restarts_the_timer_with_the_time_left() -> None:
    session, clock = paused()
    clock.advance(500)
    events = session.resume()
    assert events[0].kind == "session.resumed"
    assert session.next_deadline() == clock.now() + 50


def test_paused_next_previous_goto_stay_paused_with_full_time() -> None:
    session, clock = paused()
    session.next()
    assert (session.stage.name, session.status) == ("b", Status.PAUSED)
    assert session.stage_remaining(clock.now()) == 120
    session.previous()
    assert (session.stage.name, session.status) == ("a", Status.PAUSED)
    session.goto("c")
    assert session.stage_remaining(clock.now()) == 30
    assert session.next_deadline() is None
    session.resume()
    assert session.next_deadline() == clock.now() + 30


def test_paused_extend_adds_to_the_time_left() -> None:
    session, clock = paused()
    session.extend(15)
    assert session.stage_remaining(clock.now()) == 65


def test_paused_set_stage_and_stop() -> None:
    session, clock = paused()
    session.set_stage("b", remaining=10)
    assert session.stage_remaining(clock.now()) == 10
    assert session.status is Status.PAUSED
    session.stop()
    assert session.status is Status.STOPPED


def test_paused_tick_does_nothing() -> None:
    session, clock = paused()
    clock.advance(10_000)
    assert session.tick() == []


def test_paused_next_past_the_end_finishes() -> None:
    session, _ = paused()
    session.goto("c")
    session.next()
    assert session.status is Status.FINISHED


# --- ended --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["stopped", "finished"])
@pytest.mark.parametrize(
    "command",
    [
        lambda s: s.pause(),
        lambda s: s.resume(),
        lambda s: s.next(),
        lambda s: s.previous(),
        lambda s: s.goto("a"),
        lambda s: s.set_stage("a"),
        lambda s: s.extend(10),
        lambda s: s.stop(),
    ],
    ids=["pause", "resume", "next", "previous", "goto", "set_stage", "extend", "stop"],
)
def test_every_command_after_the_end_is_a_conflict(how: str, command: object) -> None:
    session = ended(how)
    with pytest.raises(Conflict, match=f"has {how}"):
        command(session)  # type: ignore[operator]


def test_ended_tick_does_nothing() -> None:
    session = ended("stopped")
    assert session.tick() == []
    assert session.next_deadline() is None


def test_view_reports_stage_and_times() -> None:
    session, clock = start()
    session.next()
    clock.advance(20)
    view = session.view().model_dump(mode="json")
    assert view["status"] == "running"
    assert view["stage"]["name"] == "a"
    assert view["stage"]["remaining"] == 40
    assert view["total_remaining"] == 40 + 120 + 30
    assert view["stage"]["guidance"]["summary"] == "do this"
    assert view["stages"] == ["prepare", "a", "b", "c"]


# --- kept and picked up again ---------------------------------------------------------


def test_a_record_brings_the_session_back_as_it_was() -> None:
    session, clock = start("timed")
    clock.advance(25)
    copy = Session.from_record(session.record(), clock)
    assert copy.record() == session.record()
    assert copy.routine == session.routine
    assert copy.stage_remaining(clock.now()) == 35


def test_a_paused_record_stays_paused() -> None:
    session, clock = paused()
    clock.advance(5000)
    copy = Session.from_record(session.record(), clock)
    assert copy.status is Status.PAUSED
    assert copy.tick() == []
    assert copy.stage_remaining(clock.now()) == 50


def test_a_record_picked_up_late_catches_up_with_the_stages() -> None:
    session, clock = start("timed")
    record = session.record()
    clock.advance(60 + 30)  # the service was down: stage a ran out, b is 30 s in
    copy = Session.from_record(record, clock)
    events = copy.tick()
    assert [e.stage for e in events] == ["b"]
    assert copy.stage_remaining(clock.now()) == 90
    clock.advance(1000)  # and long after the end
    assert [e.kind for e in copy.tick()][-1] == "session.ended"
    assert copy.ended_at == copy.started_at + 210


# --- the stages reached -------------------------------------------------------------------


def test_the_stages_reached_are_recorded_in_the_order_first_entered() -> None:
    session, _ = start()
    assert session.reached == ["prepare"]
    session.goto("b")  # a is passed over: never reached
    session.previous()  # back to a: now it is
    session.next()  # b again: not twice
    assert session.reached == ["prepare", "b", "a"]
    assert session.view().reached == ["prepare", "b", "a"]
    session.stop()
    assert session.reached == ["prepare", "b", "a"]  # c never was


def test_stages_run_out_by_the_timer_are_reached_also_after_a_gap() -> None:
    session, clock = start("timed")
    record = session.record()
    assert record["reached"] == ["a"]
    clock.advance(60 + 30)  # the service was down while the massage went on: a, then b
    copy = Session.from_record(record, clock)
    copy.tick()
    assert copy.reached == ["a", "b"]
    assert Session.from_record(copy.record(), clock).reached == ["a", "b"]


def test_a_record_from_before_the_stages_reached_were_kept_walked_up_to_its_stage() -> None:
    session, clock = start()
    session.next()
    session.next()  # in b
    record = session.record()
    del record["reached"], record["follows"]  # as a session stored by schema v4 reads
    copy = Session.from_record(record, clock)
    assert copy.reached == ["prepare", "a", "b"]
    assert copy.follows is None


def test_a_turn_says_which_session_it_follows() -> None:
    clock = FakeClock()
    session = Session(LIBRARY.routine("quick"), clock, profile="alex", follows="first-id")
    session.start()
    assert session.view().follows == "first-id"
    assert Session.from_record(session.record(), clock).follows == "first-id"
