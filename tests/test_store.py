"""The SQLite store: round trips, history, bad rows, migrations, threads, and a real kill -9."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ambiance.core.engine import Session
from ambiance.errors import ConfigError, Conflict, InvalidInput
from ambiance.infra import store as store_module
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, SessionRecord, Store
from tests.helpers import make_library

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0


def record(id: str, **changes: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "id": id,
        "room": "bedroom",
        "routine": "classic",
        "routine_data": {"routine": {"name": "classic", "stages": [{"name": "prepare"}]}},
        "profile": None,
        "status": "finished",
        "index": 0,
        "started_at": T0,
        "stage_started_at": T0,
        "deadline": None,
        "paused_remaining": None,
        "ended_at": T0 + 60,
        "updated_at": T0 + 60,
    }
    fields.update(changes)
    return SessionRecord(**fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / DB_NAME


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db) as opened:
        yield opened


def raw(db: Path) -> sqlite3.Connection:
    """A plain connection beside the store, to look at or spoil rows."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


# --- opening --------------------------------------------------------------------------


def test_open_creates_the_folder_and_the_latest_schema(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path / "a" / "b")
    assert store.path == tmp_path / "a" / "b" / DB_NAME
    assert not store.path.parent.exists()  # the constructor only assigns
    with store:
        assert store.version == SCHEMA_VERSION == len(MIGRATIONS) >= 2
        conn = store._require()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_use_before_open_or_after_close_is_an_error(db: Path) -> None:
    store = Store(db)
    with pytest.raises(RuntimeError, match="not open"):
        store.get_session("x")
    store.open()
    store.open()  # a second open is a no-op
    store.close()
    store.close()  # and so is a second close
    with pytest.raises(RuntimeError, match="not open"):
        store.list_profiles()


def test_a_file_that_is_not_a_database_is_a_config_error(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(ConfigError, match=str(db)):
        Store(db).open()


# --- sessions -------------------------------------------------------------------------


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
    store.save_session(first)
    assert store.get_session("s1") == first
    assert store.get_session("nope") is None

    paused = dataclasses.replace(
        first, status="paused", deadline=None, paused_remaining=42.0, updated_at=T0 + 99
    )
    store.save_session(paused)
    assert store.get_session("s1") == paused
    assert store.history() == [paused]  # updated in place, not a second row


def test_session_record_matches_the_engine(store: Store) -> None:
    clock = FakeClock(T0)
    session = Session(make_library().routine("timed"), clock, profile="sam")
    session.start()
    clock.advance(5)
    session.pause()

    saved = SessionRecord(room="bedroom", updated_at=clock.now(), **session.record())
    store.save_session(saved)
    loaded = store.get_session(session.id)
    assert loaded == saved
    assert loaded is not None

    again = Session.from_record(loaded.as_dict(), clock)
    assert again.record() == session.record()


def test_json_columns_are_sorted_text(store: Store, db: Path) -> None:
    store.save_session(record("s1", routine_data={"z": 1, "a": {"y": 2, "b": 3}}))
    text = raw(db).execute("SELECT routine_data FROM session_routines").fetchone()[0]
    assert text == '{"a":{"b":3,"y":2},"z":1}'


def test_a_session_keeps_the_routine_of_its_first_save(store: Store, db: Path) -> None:
    first = record("s1", status="running", ended_at=None, routine_data={"routine": {"v": 1}})
    store.save_session(first)
    # Later saves (every stage change) rewrite the small session row only.
    later = dataclasses.replace(first, index=3, routine_data={"routine": {"v": 2}})
    store.save_session(later)
    loaded = store.get_session("s1")
    assert loaded is not None and loaded.index == 3
    assert loaded.routine_data == {"routine": {"v": 1}}
    # ...also for another process, which never saw the first save.
    with Store(db) as other:
        other.save_session(dataclasses.replace(later, index=4))
        assert other.get_session("s1") == dataclasses.replace(first, index=4)


@pytest.mark.anyio
async def test_saves_soon_go_together_at_the_end_of_the_loops_turn(store: Store, db: Path) -> None:
    builds: list[str] = []

    def build(id: str, index: int) -> Callable[[], SessionRecord]:
        def make() -> SessionRecord:
            builds.append(id)
            return record(id, room=id, status="running", ended_at=None, index=index)

        return make

    store.save_session_soon("a", build("a", 1))
    store.log_command_soon("a", T0, "start", {})  # refers to "a": written after it
    store.save_session_soon("b", build("b", 1))
    store.save_session_soon("a", build("a", 2))  # the later change wins, built once
    store.save_dnd_soon("a", "anna", {"state": "on"}, at=T0)
    assert builds == []
    with raw(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM dnd").fetchone()[0] == 0
    turn_over = asyncio.Event()
    asyncio.get_running_loop().call_soon(turn_over.set)  # queued after the store's flush
    await turn_over.wait()
    assert builds == ["a", "b"]  # in the order of their first change
    with raw(db) as conn:
        rows = conn.execute("SELECT id, stage_index FROM sessions ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("a", 2), ("b", 1)]
    assert [c["action"] for c in store.commands("a")] == ["start"]
    assert store.dnd_states("a") == {"anna": {"state": "on"}}


@pytest.mark.anyio
async def test_any_other_call_writes_the_saves_soon_first(store: Store) -> None:
    store.save_session_soon("s1", lambda: record("s1", status="running", ended_at=None))
    # The snapshot refers to the session: it must be in the store by now.
    store.save_snapshot("s1", "lights", {"on": True})
    assert store.snapshots("s1") == {"lights": {"on": True}}
    store.save_session_soon("s2", lambda: record("s2", room="lounge"))
    assert store.get_session("s2") is not None
    store.save_session_soon("s3", lambda: record("s3", room="hall"))
    store.close()  # closing writes them too
    store.open()
    assert store.get_session("s3") is not None


@pytest.mark.anyio
async def test_a_save_soon_that_fails_is_logged_and_the_others_are_kept(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> SessionRecord:
        raise ValueError("cannot build")

    store.save_session(record("r1", status="running", ended_at=None))
    store.save_session_soon("broken", broken)
    # A second running session in the room: refused by the database, reported.
    store.save_session_soon("r2", lambda: record("r2", status="running", ended_at=None))
    store.save_session_soon("ok", lambda: record("ok", room="lounge"))
    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert store.get_session("ok") is not None
    assert store.get_session("r2") is None
    assert "session broken not saved" in caplog.text
    assert "session r2 not saved" in caplog.text


def test_without_a_running_loop_a_save_soon_is_a_save_now(store: Store, db: Path) -> None:
    store.save_session_soon("s1", lambda: record("s1"))
    store.save_dnd_soon("bedroom", "anna", {"state": "off"})
    with raw(db) as conn:
        assert conn.execute("SELECT id FROM sessions").fetchone()[0] == "s1"
        assert conn.execute("SELECT phone FROM dnd").fetchone()[0] == "anna"


def test_unknown_status_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="lost"):
        store.save_session(record("s1", status="lost"))
    assert store.history() == []


def test_active_sessions_one_per_room(store: Store) -> None:
    store.save_session(record("old", status="finished"))
    running = record("r1", status="running", ended_at=None, started_at=T0 + 10)
    paused = record("p1", room="lounge", status="paused", ended_at=None, started_at=T0 + 5)
    store.save_session(running)
    store.save_session(paused)
    assert store.active_sessions() == [paused, running]  # oldest first

    # A second active session in a room is a Conflict naming the one there; nothing changes.
    with pytest.raises(Conflict, match=r"'bedroom'.*running session r1"):
        store.save_session(record("r2", status="paused", ended_at=None))
    assert store.get_session("r2") is None
    assert store.get_session("r1") == running

    # Once the first one has ended, the room is free.
    store.save_session(dataclasses.replace(running, status="stopped", ended_at=T0 + 20))
    store.save_session(record("r2", status="running", ended_at=None))
    assert [s.id for s in store.active_sessions()] == ["r2", "p1"]  # r2 started first


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
        store.save_session(row)

    def ids(**kw: Any) -> list[str]:
        return [s.id for s in store.history(**kw)]

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
    assert store.history(limit=1)[0] == rows[-1]
    with pytest.raises(InvalidInput):
        store.history(limit=-1)
    with pytest.raises(InvalidInput):
        store.history(offset=-1)


# --- commands, snapshots, phones --------------------------------------------------------


def test_commands_round_trip_in_order(store: Store) -> None:
    store.save_session(record("s1"))
    store.save_session(record("s2"))
    first = store.log_command("s1", T0 + 1, "next", {})
    store.log_command("s2", T0 + 1, "pause", {})
    second = store.log_command("s1", T0 + 2, "extend", {"seconds": 60, "by": "api"})
    assert second > first
    assert store.commands("s1") == [
        {"id": first, "session_id": "s1", "at": T0 + 1, "action": "next", "args": {}},
        {
            "id": second,
            "session_id": "s1",
            "at": T0 + 2,
            "action": "extend",
            "args": {"by": "api", "seconds": 60},
        },
    ]
    assert store.commands("nope") == []


def test_rows_of_a_session_need_the_session(store: Store) -> None:
    # Foreign keys are on: a command, snapshot or feedback for no session is a bug.
    with pytest.raises(sqlite3.IntegrityError):
        store.log_command("ghost", T0, "next", {})
    with pytest.raises(sqlite3.IntegrityError):
        store.save_snapshot("ghost", "lights", {})
    with pytest.raises(sqlite3.IntegrityError):
        store.add_feedback("ghost", None, {}, T0)


def test_a_snapshot_waits_to_be_put_back_until_marked_restored(store: Store) -> None:
    routine = {"routine": {"name": "classic", "restore_transition": 4, "stages": []}}
    running = record("s1", status="running", ended_at=None, routine_data=routine)
    store.save_session(running)
    store.save_snapshot("s1", "lights", {"1": {"on": True}})
    store.save_snapshot("s1", "music", None)
    assert store.pending_restores() == []  # a running session keeps its own for its end
    store.save_session(dataclasses.replace(running, status="stopped", ended_at=T0 + 60))
    pending = store.pending_restores()
    assert [(p.room, p.session_id, p.device, p.data, p.transition) for p in pending] == [
        ("bedroom", "s1", "lights", {"1": {"on": True}}, 4.0),
        ("bedroom", "s1", "music", None, 4.0),
    ]
    store.mark_restored("lounge", "lights", at=T0 + 70)  # another room: not these
    store.mark_restored("bedroom", "lights", at=T0 + 70)
    assert [p.device for p in store.pending_restores()] == ["music"]
    store.save_snapshot("s1", "lights", {"1": {"on": False}})  # a new one: pending again
    assert [p.device for p in store.pending_restores()] == ["lights", "music"]


def test_snapshots_round_trip_any_json(store: Store) -> None:
    store.save_session(record("s1"))
    store.save_session(record("s2"))
    lights = {"1": {"on": True, "bri": 200, "xy": [0.3, 0.4]}, "2": {"on": False}}
    store.save_snapshot("s1", "lights", lights)
    store.save_snapshot("s1", "distractions", ["plug-1", "hue:7"])
    store.save_snapshot("s1", "music", None)
    store.save_snapshot("s2", "lights", {"other": 1})
    assert store.snapshots("s1") == {
        "lights": lights,
        "distractions": ["plug-1", "hue:7"],
        "music": None,
    }
    store.save_snapshot("s1", "music", {"playing": "rain", "volume": 30})  # replaces
    assert store.snapshots("s1")["music"] == {"playing": "rain", "volume": 30}
    assert store.snapshots("s2") == {"lights": {"other": 1}}
    assert store.snapshots("nope") == {}


def test_dnd_states_per_room(store: Store) -> None:
    store.save_dnd("bedroom", "anna", {"state": "on", "until": T0 + 3600}, at=T0)
    store.save_dnd("bedroom", "ben", {"state": "on"})
    store.save_dnd("lounge", "anna", {"state": "off"})
    store.save_dnd("bedroom", "anna", {"state": "off"}, at=T0 + 10)  # replaces
    assert store.dnd_states("bedroom") == {"anna": {"state": "off"}, "ben": {"state": "on"}}
    assert store.dnd_states("lounge") == {"anna": {"state": "off"}}
    assert store.dnd_states("attic") == {}


# --- profiles and feedback --------------------------------------------------------------


def test_profiles_round_trip(store: Store) -> None:
    sam = {"name": "sam", "pressure": "firm", "avoid": ["neck"]}
    store.put_profile("sam", sam, at=T0)
    store.put_profile("alex", {"name": "alex", "pressure": "soft"}, at=T0 + 1)
    assert store.get_profile("sam") == sam
    assert store.get_profile("nobody") is None
    assert [p["name"] for p in store.list_profiles()] == ["alex", "sam"]

    firmer = {**sam, "pressure": "medium", "sessions": 1}
    store.put_profile("sam", firmer, at=T0 + 50)
    assert store.get_profile("sam") == firmer
    assert store.profile_times("sam") == (T0, T0 + 50)  # created_at kept
    assert store.profile_times("nobody") is None

    assert store.delete_profile("sam") is True
    assert store.delete_profile("sam") is False
    assert store.get_profile("sam") is None
    assert store.list_profiles() == [{"name": "alex", "pressure": "soft"}]


def test_feedback_round_trip(store: Store) -> None:
    store.save_session(record("s1", profile="sam"))
    store.save_session(record("s2", profile="sam"))
    store.put_profile("sam", {"name": "sam"})
    ids = [
        store.add_feedback("s1", "sam", {"rating": 4, "stages": {"petrissage": "firmer"}}, T0),
        store.add_feedback("s1", None, {"notes": "lovely"}, T0 + 1),
        store.add_feedback("s2", "sam", {"rating": 5}, T0 + 100),
        store.add_feedback("s2", "sam", {"rating": 3}, T0 + 50),
    ]
    assert len(set(ids)) == 4

    assert store.feedback_for_session("s1") == [
        {
            "id": ids[0],
            "session_id": "s1",
            "profile": "sam",
            "at": T0,
            "data": {"rating": 4, "stages": {"petrissage": "firmer"}},
        },
        {
            "id": ids[1],
            "session_id": "s1",
            "profile": None,
            "at": T0 + 1,
            "data": {"notes": "lovely"},
        },
    ]
    assert [f["data"].get("rating") for f in store.feedback_for_profile("sam")] == [5, 3, 4]
    assert [f["id"] for f in store.feedback_for_profile("sam", limit=2)] == [ids[2], ids[3]]
    assert store.feedback_for_profile("alex") == []

    # Deleting a profile keeps what it said (history, not preferences).
    store.delete_profile("sam")
    assert len(store.feedback_for_profile("sam")) == 3


# --- bad rows ---------------------------------------------------------------------------


def test_corrupt_json_rows_are_logged_and_skipped(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_session(record("good", started_at=T0 + 1))
    store.save_session(record("bad", started_at=T0 + 2))
    store.save_session(record("list", started_at=T0 + 3))
    store.save_session(record("gone", started_at=T0 + 4))  # its routine row goes missing
    store.save_snapshot("good", "lights", {"on": True})
    store.save_snapshot("good", "music", {"volume": 1})
    store.log_command("good", T0, "next", {})
    store.log_command("good", T0 + 1, "pause", {})
    store.add_feedback("good", "sam", {"rating": 5}, T0)
    store.add_feedback("good", "sam", {"rating": 1}, T0 + 1)
    store.put_profile("sam", {"name": "sam"})
    store.put_profile("zed", {"name": "zed"})
    store.save_dnd("bedroom", "anna", {"state": "on"})
    store.save_dnd("bedroom", "ben", {"state": "on"})

    conn = raw(db)
    conn.execute("UPDATE session_routines SET routine_data = '{not json' WHERE session_id = 'bad'")
    conn.execute("DELETE FROM session_routines WHERE session_id = 'gone'")
    conn.execute("UPDATE session_routines SET routine_data = '[1, 2]' WHERE session_id = 'list'")
    conn.execute("UPDATE snapshots SET data = 'nope' WHERE device = 'music'")
    conn.execute("UPDATE commands SET args = '{' WHERE action = 'pause'")
    conn.execute("UPDATE feedback SET data = '' WHERE at = ?", (T0 + 1,))
    conn.execute("UPDATE profiles SET data = '{\"name\":' WHERE name = 'zed'")
    conn.execute("UPDATE dnd SET payload = 'null' WHERE phone = 'ben'")
    conn.close()

    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert [s.id for s in store.history()] == ["good"]
        assert store.get_session("bad") is None
        assert store.get_session("good") is not None
        assert store.snapshots("good") == {"lights": {"on": True}}
        assert [c["action"] for c in store.commands("good")] == ["next"]
        assert [f["data"] for f in store.feedback_for_session("good")] == [{"rating": 5}]
        assert [f["data"] for f in store.feedback_for_profile("sam")] == [{"rating": 5}]
        assert store.get_profile("zed") is None
        assert store.list_profiles() == [{"name": "sam"}]
        assert store.dnd_states("bedroom") == {"anna": {"state": "on"}}
    logged = caplog.text
    rows = ("id='bad'", "id='list'", "id='gone'", "snapshot", "command", "feedback", "'zed'")
    for needle in (*rows, "dnd"):
        assert needle in logged


def test_an_unreadable_active_session_is_stopped_so_the_room_is_free(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_session(record("ok", room="lounge", status="running", ended_at=None))
    store.save_session(
        record("bad", status="paused", ended_at=None, updated_at=T0 + 7, paused_remaining=9.0)
    )
    conn = raw(db)
    conn.execute("UPDATE session_routines SET routine_data = 'garbage' WHERE session_id = 'bad'")

    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert [s.id for s in store.active_sessions()] == ["ok"]
    assert "bad" in caplog.text and "stopped" in caplog.text
    row = conn.execute("SELECT status, ended_at FROM sessions WHERE id = 'bad'").fetchone()
    assert (row["status"], row["ended_at"]) == ("stopped", T0 + 7)
    conn.close()
    store.save_session(record("new", status="running", ended_at=None))  # no Conflict


# --- migrations -------------------------------------------------------------------------


def make_v1(db: Path) -> None:
    """A real version 1 database with data in every table, as v1 code left it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(
        "INSERT INTO sessions (id, room, routine, routine_data, profile, status, stage_index,"
        " started_at, stage_started_at, deadline, paused_remaining, ended_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("old", "bedroom", "classic", '{"routine":{"n":1}}', "sam", "finished", 3,
             T0, T0 + 50, None, None, T0 + 60, T0 + 60),
            ("live", "bedroom", "taster", '{"routine":{"n":2}}', None, "running", 1,
             T0 + 100, T0 + 110, T0 + 400, None, None, T0 + 110),
        ],
    )  # fmt: skip
    conn.execute("INSERT INTO snapshots VALUES ('live', 'lights', '{\"1\":{\"on\":true}}')")
    conn.execute("INSERT INTO snapshots VALUES ('old', 'lights', '{\"1\":{\"on\":false}}')")
    conn.execute("INSERT INTO dnd VALUES ('bedroom', 'anna', '{\"state\":\"on\"}', ?)", (T0,))
    conn.execute("INSERT INTO profiles VALUES ('sam', '{\"name\":\"sam\"}', ?, ?)", (T0, T0 + 5))
    conn.execute("INSERT INTO feedback (session_id, data, at) VALUES ('old', '{\"rating\":4}', ?)",
                 (T0 + 70,))  # fmt: skip
    conn.execute("INSERT INTO feedback (session_id, data, at) VALUES ('live', '{\"rating\":2}', ?)",
                 (T0 + 120,))  # fmt: skip
    conn.commit()
    conn.close()


def test_a_v1_database_migrates_to_the_latest_keeping_every_row(db: Path) -> None:
    make_v1(db)
    with Store(db) as store:
        assert store.version == SCHEMA_VERSION
        old = store.get_session("old")
        live = store.get_session("live")
        assert old == SessionRecord(
            id="old", room="bedroom", routine="classic", routine_data={"routine": {"n": 1}},
            profile="sam", status="finished", index=3, started_at=T0, stage_started_at=T0 + 50,
            deadline=None, paused_remaining=None, ended_at=T0 + 60, updated_at=T0 + 60,
        )  # fmt: skip
        assert live is not None and live.deadline == T0 + 400 and live.index == 1
        assert store.active_sessions() == [live]
        assert [s.id for s in store.history()] == ["live", "old"]
        assert store.snapshots("live") == {"lights": {"1": {"on": True}}}
        # v4: the snapshots of sessions that had ended are taken as put back; a running
        # one's waits for its end.
        assert store.pending_restores() == []
        store.save_session(dataclasses.replace(live, status="stopped", ended_at=T0 + 200))
        assert [(p.session_id, p.transition) for p in store.pending_restores()] == [
            ("live", None)  # its v1 routine_data names no restore_transition
        ]
        assert store.dnd_states("bedroom") == {"anna": {"state": "on"}}
        assert store.get_profile("sam") == {"name": "sam"}
        assert store.profile_times("sam") == (T0, T0 + 5)
        # v2 gave feedback a profile: old rows got their session's.
        assert [f["data"] for f in store.feedback_for_profile("sam")] == [{"rating": 4}]
        assert store.feedback_for_session("live")[0]["profile"] is None
        assert store.feedback_for_session("old")[0]["profile"] == "sam"
        # ...and the new commands table works, for old sessions too.
        store.log_command("old", T0 + 80, "note", {"x": 1})
        assert [c["action"] for c in store.commands("old")] == ["note"]
        # New rows go on after the old ones.
        new_id = store.add_feedback("old", "sam", {"rating": 5}, T0 + 90)
        assert new_id > store.feedback_for_session("old")[0]["id"]


def schema_and_rows(db: Path) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows: list[tuple[Any, ...]] = []
        tables = ("sessions", "session_routines", "snapshots", "dnd", "profiles", "feedback")
        for table in (*tables, "commands"):
            rows += [(table, *r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]
        return version, schema, rows
    finally:
        conn.close()


def test_opening_again_changes_nothing(db: Path) -> None:
    make_v1(db)
    Store(db).open()  # migrates (left open: a second connection meanwhile is fine)
    before = schema_and_rows(db)
    with Store(db):
        pass
    assert schema_and_rows(db) == before
    assert before[0] == SCHEMA_VERSION


def test_a_fresh_database_and_a_migrated_one_have_the_same_schema(tmp_path: Path) -> None:
    make_v1(tmp_path / "old.db")
    with Store(tmp_path / "old.db"), Store(tmp_path / "new.db"):
        pass
    assert schema_and_rows(tmp_path / "old.db")[1] == schema_and_rows(tmp_path / "new.db")[1]


def test_a_newer_database_is_refused_and_left_untouched(db: Path) -> None:
    with Store(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    before = db.read_bytes()

    with pytest.raises(ConfigError) as caught:
        Store(db).open()
    message = str(caught.value)
    assert str(db) in message
    assert f"version {SCHEMA_VERSION + 3}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert db.read_bytes() == before


def test_a_failing_migration_is_rolled_back(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(db):
        pass
    broken = "CREATE TABLE half_done (a TEXT);\nSELECT missing FROM nowhere;\n"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(
        ConfigError, match=f"version {SCHEMA_VERSION + 1} failed.*no such table: nowhere"
    ):
        Store(db).open()
    version, schema, _ = schema_and_rows(db)
    assert version == SCHEMA_VERSION
    assert "half_done" not in {name for _, name, _ in schema}


# --- concurrency ------------------------------------------------------------------------

THREADS = 8
WRITES = 200


def write_many(store: Store, tag: str, barrier: threading.Barrier) -> None:
    """WRITES writes, rotating through sessions, commands, feedback and profiles."""
    barrier.wait()
    session = ""
    for i in range(WRITES):
        kind = i % 4
        if kind == 0:
            session = f"{tag}-{i}"
            store.save_session(record(session, room=f"room-{tag}", status="running",
                                      ended_at=None, started_at=T0 + i))  # fmt: skip
        elif kind == 1:
            store.log_command(session, T0 + i, "next", {"i": i})
        elif kind == 2:
            store.add_feedback(session, tag, {"i": i}, T0 + i)
        else:
            store.put_profile(f"{tag}-{i}", {"name": f"{tag}-{i}"})
            # end the session, so the next one can run in this room
            store.save_session(record(session, room=f"room-{tag}", started_at=T0 + i - 3))


def test_many_threads_and_a_second_connection_lose_nothing(db: Path) -> None:
    tags = [f"t{n}" for n in range(THREADS)] + ["other-a", "other-b"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(tags))

    with Store(db) as first, Store(db) as second:

        def run(tag: str) -> None:
            try:
                write_many(second if tag.startswith("other") else first, tag, barrier)
            except BaseException as exc:  # reported below, with the thread's tag
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=run, args=(tag,)) for tag in tags]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)

    with Store(db) as store:
        per_tag = WRITES // 4
        for tag in tags:
            sessions = store.history(room=f"room-{tag}", limit=1000)
            assert sorted(s.id for s in sessions) == sorted(
                f"{tag}-{i}" for i in range(0, WRITES, 4)
            )
            assert all(s.status == "finished" for s in sessions)
            assert len(store.feedback_for_profile(tag, limit=1000)) == per_tag
            for i in range(0, WRITES, 4):
                assert [c["args"] for c in store.commands(f"{tag}-{i}")] == [{"i": i + 1}]
        assert len(store.list_profiles()) == per_tag * len(tags)
        assert store.active_sessions() == []


# --- a real kill -9 ---------------------------------------------------------------------

CRASH_SESSIONS = 200

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ambiance.infra.store import SessionRecord, Store

    store = Store(Path(sys.argv[1]))
    store.open()
    for i in range(int(sys.argv[2])):
        store.save_session(SessionRecord(
            id=f"s{i}", room=f"room-{i}", routine="classic", routine_data={"i": i},
            profile=None, status="running", index=0, started_at=float(i),
            stage_started_at=float(i), deadline=float(i) + 300, paused_remaining=None,
            ended_at=None, updated_at=float(i),
        ))
    print("written", flush=True)
    time.sleep(60)  # killed long before this
    """
)


def test_every_session_written_survives_a_kill_9(db: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(CRASH_SESSIONS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the writer did not say 'written' in time"
        line = proc.stdout.readline()
        assert line.strip() == "written", (line, proc.stderr.read() if proc.stderr else "")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    # The writer never closed: its commits are in the WAL, which the next open recovers.
    assert db.with_name(db.name + "-wal").exists()
    with Store(db) as store:
        active = store.active_sessions()
        assert len(active) == CRASH_SESSIONS
        assert {s.id for s in active} == {f"s{i}" for i in range(CRASH_SESSIONS)}
        assert all(s.routine_data == {"i": int(s.id[1:])} for s in active)
        assert json.loads(json.dumps(active[0].as_dict()))["deadline"] == 300.0
