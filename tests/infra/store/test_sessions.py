"""Sessions: round trips, one active per room, history, the commands given, bad rows."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from ambiance.core.engine import Session
from ambiance.errors import Conflict, InvalidInput
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import SessionRecord, Store
from tests.helpers import make_library
from tests.infra.store.helpers import T0, raw, record


def test_session_round_trip_and_upsert(store: Store) -> None:
    first = record(
        "s1",
        status="running",
        profile="sam",
        index=2,
        deadline=T0 + 300.5,
        ended_at=None,
        routine_data={"routine": {"b": [1, 2.5, None], "a": "ü"}, "scenes": {}},
    )
    store.sessions.save(first)
    assert store.sessions.get("s1") == first
    assert store.sessions.get("nope") is None

    paused = dataclasses.replace(
        first, status="paused", deadline=None, paused_remaining=42.0, updated_at=T0 + 99
    )
    store.sessions.save(paused)
    assert store.sessions.get("s1") == paused
    assert store.sessions.history() == [paused]  # updated in place, not a second row


def test_session_record_matches_the_engine(store: Store) -> None:
    clock = FakeClock(T0)
    session = Session(make_library().routine("timed"), clock, profile="sam")
    session.start()
    clock.advance(5)
    session.pause()

    saved = SessionRecord(room="bedroom", updated_at=clock.now(), **session.record())
    store.sessions.save(saved)
    loaded = store.sessions.get(session.id)
    assert loaded == saved
    assert loaded is not None

    again = Session.from_record(loaded.as_dict(), clock)
    assert again.record() == session.record()


def test_the_stages_reached_and_the_turn_taken_are_kept(store: Store) -> None:
    first = record("first", profile="sam", reached=["prepare", "effleurage"])
    store.sessions.save(first)
    turn = record("turn", profile="alex", follows="first", started_at=T0 + 100, reached=[])
    store.sessions.save(turn)
    assert store.sessions.get("first") == first
    assert store.sessions.get("turn") == turn
    assert store.sessions.followers(["first", "turn", "nope"]) == {"first": "turn"}
    assert store.sessions.followers([]) == {}


def test_an_unreadable_list_of_stages_reached_skips_the_row(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.sessions.save(record("s1", reached=["prepare"]))
    raw(db).execute("UPDATE sessions SET reached = '{\"a\": 1}' WHERE id = 's1'")
    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert store.sessions.get("s1") is None
    assert "reached is not a list" in caplog.text


def test_json_columns_are_sorted_text(store: Store, db: Path) -> None:
    store.sessions.save(record("s1", routine_data={"z": 1, "a": {"y": 2, "b": 3}}))
    text = raw(db).execute("SELECT routine_data FROM session_routines").fetchone()[0]
    assert text == '{"a":{"b":3,"y":2},"z":1}'


def test_a_session_keeps_the_routine_of_its_first_save(store: Store, db: Path) -> None:
    first = record("s1", status="running", ended_at=None, routine_data={"routine": {"v": 1}})
    store.sessions.save(first)
    # Later saves (every stage change) rewrite the small session row only.
    later = dataclasses.replace(first, index=3, routine_data={"routine": {"v": 2}})
    store.sessions.save(later)
    loaded = store.sessions.get("s1")
    assert loaded is not None and loaded.index == 3
    assert loaded.routine_data == {"routine": {"v": 1}}
    # ...also for another process, which never saw the first save.
    with Store(db) as other:
        other.sessions.save(dataclasses.replace(later, index=4))
        assert other.sessions.get("s1") == dataclasses.replace(first, index=4)
    # A session that changed its routine (today's answers while getting ready) says so
    # with a newer version: that one is kept, and later saves keep it too.
    changed = dataclasses.replace(first, routine_data={"routine": {"v": 3}}, routine_version=1)
    store.sessions.save(changed)
    store.sessions.save(dataclasses.replace(changed, index=5))
    with Store(db) as other:
        loaded = other.sessions.get("s1")
        assert loaded is not None and loaded.routine_data == {"routine": {"v": 3}}
        assert loaded.index == 5


def test_unknown_status_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="lost"):
        store.sessions.save(record("s1", status="lost"))
    assert store.sessions.history() == []


def test_active_sessions_one_per_room(store: Store) -> None:
    store.sessions.save(record("old", status="finished"))
    running = record("r1", status="running", ended_at=None, started_at=T0 + 10)
    paused = record("p1", room="lounge", status="paused", ended_at=None, started_at=T0 + 5)
    store.sessions.save(running)
    store.sessions.save(paused)
    assert store.sessions.active() == [paused, running]  # oldest first

    # A second active session in a room is a Conflict naming the one there; nothing changes.
    with pytest.raises(Conflict, match=r"'bedroom'.*running session r1"):
        store.sessions.save(record("r2", status="paused", ended_at=None))
    assert store.sessions.get("r2") is None
    assert store.sessions.get("r1") == running

    # Once the first one has ended, the room is free.
    store.sessions.save(dataclasses.replace(running, status="stopped", ended_at=T0 + 20))
    store.sessions.save(record("r2", status="running", ended_at=None))
    assert [s.id for s in store.sessions.active()] == ["r2", "p1"]  # r2 started first


def test_history_newest_first_with_filters_and_pages(store: Store) -> None:
    rows = [
        record("a", room="bedroom", profile="sam", started_at=T0 + 1),
        record("b", room="lounge", profile="sam", started_at=T0 + 3),
        record("c", room="bedroom", profile=None, started_at=T0 + 2),
        record("d", room="bedroom", profile="alex", started_at=T0 + 4),
        record("e", room="lounge", profile="alex", started_at=T0 + 4),  # same instant as d
        record("f", room="bedroom", status="running", ended_at=None, started_at=T0 + 5),
    ]
    for row in rows:
        store.sessions.save(row)

    def ids(**kw: Any) -> list[str]:
        return [s.id for s in store.sessions.history(**kw)]

    assert ids() == ["f", "e", "d", "b", "c", "a"]  # a tie: the later insert first
    assert ids(room="bedroom") == ["f", "d", "c", "a"]
    assert ids(profile="sam") == ["b", "a"]
    assert ids(room="lounge", profile="alex") == ["e"]
    assert ids(room="attic") == []
    assert ids(limit=2) == ["f", "e"]
    assert ids(limit=2, offset=2) == ["d", "b"]
    assert ids(limit=2, offset=4) == ["c", "a"]
    assert ids(limit=2, offset=6) == []
    assert ids(limit=0) == []
    assert ids(room="bedroom", limit=1, offset=1) == ["d"]
    assert store.sessions.history(limit=1)[0] == rows[-1]
    with pytest.raises(InvalidInput):
        store.sessions.history(limit=-1)
    with pytest.raises(InvalidInput):
        store.sessions.history(offset=-1)


# --- commands, snapshots, phones --------------------------------------------------------


def test_commands_round_trip_in_order(store: Store) -> None:
    store.sessions.save(record("s1"))
    store.sessions.save(record("s2"))
    first = store.sessions.log_command("s1", T0 + 1, "next", {})
    store.sessions.log_command("s2", T0 + 1, "pause", {})
    second = store.sessions.log_command("s1", T0 + 2, "extend", {"seconds": 60, "by": "api"})
    assert second > first
    assert store.sessions.commands("s1") == [
        {"id": first, "session_id": "s1", "at": T0 + 1, "action": "next", "args": {}},
        {
            "id": second,
            "session_id": "s1",
            "at": T0 + 2,
            "action": "extend",
            "args": {"by": "api", "seconds": 60},
        },
    ]
    assert store.sessions.commands("nope") == []


def test_an_unreadable_active_session_is_stopped_so_the_room_is_free(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.sessions.save(record("ok", room="lounge", status="running", ended_at=None))
    store.sessions.save(
        record("bad", status="paused", ended_at=None, updated_at=T0 + 7, paused_remaining=9.0)
    )
    conn = raw(db)
    conn.execute("UPDATE session_routines SET routine_data = 'garbage' WHERE session_id = 'bad'")

    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert [s.id for s in store.sessions.active()] == ["ok"]
    assert "bad" in caplog.text and "stopped" in caplog.text
    row = conn.execute("SELECT status, ended_at FROM sessions WHERE id = 'bad'").fetchone()
    assert (row["status"], row["ended_at"]) == ("stopped", T0 + 7)
    conn.close()
    store.sessions.save(record("new", status="running", ended_at=None))  # no Conflict
