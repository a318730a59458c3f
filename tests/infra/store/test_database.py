"""The database: opening, foreign keys, migrations, threads, and a real kill -9."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from ambiance.errors import ConfigError, StorageError
from ambiance.infra.store import (
    DB_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    AlreadyGiven,
    SessionRecord,
    Store,
    backups,
)
from ambiance.infra.store import schema as schema_module
from tests.infra.store.helpers import T0, record

ROOT = Path(__file__).resolve().parents[3]


# --- opening --------------------------------------------------------------------------


def test_open_creates_the_folder_and_the_latest_schema(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path / "a" / "b")
    assert store.db.path == tmp_path / "a" / "b" / DB_NAME
    assert not store.db.path.parent.exists()  # the constructor only assigns
    with store:
        assert store.db.version == SCHEMA_VERSION == len(MIGRATIONS) >= 2
        conn = store.db._require()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_use_before_open_or_after_close_is_an_error(db: Path) -> None:
    store = Store(db)
    with pytest.raises(RuntimeError, match="not open"):
        store.sessions.get("x")
    store.open()
    store.open()  # a second open is a no-op
    store.close()
    store.close()  # and so is a second close
    with pytest.raises(RuntimeError, match="not open"):
        store.profiles.all()


def test_a_file_that_is_not_a_database_is_refused_and_kept(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(StorageError, match=f"{db} is not a SQLite database") as caught:
        Store(db).open()
    assert caught.value.kind == "damaged"
    assert "there is no backup of it" in caught.value.message
    assert db.read_bytes() == b"this is not sqlite " * 100


def test_rows_of_a_session_need_the_session(store: Store) -> None:
    # Foreign keys are on: a command, snapshot or feedback for no session is a bug.
    with pytest.raises(sqlite3.IntegrityError):
        store.sessions.log_command("ghost", T0, "next", {})
    with pytest.raises(sqlite3.IntegrityError):
        store.snapshots.save("ghost", "lights", {})
    with pytest.raises(sqlite3.IntegrityError):
        store.feedback.add("ghost", None, {}, T0)


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
        assert store.db.version == SCHEMA_VERSION
        old = store.sessions.get("old")
        live = store.sessions.get("live")
        assert old == SessionRecord(
            id="old", room="bedroom", routine="classic", routine_data={"routine": {"n": 1}},
            profile="sam", status="finished", index=3, started_at=T0, stage_started_at=T0 + 50,
            deadline=None, paused_remaining=None, ended_at=T0 + 60, updated_at=T0 + 60,
        )  # fmt: skip
        assert live is not None and live.deadline == T0 + 400 and live.index == 1
        assert store.sessions.active() == [live]
        assert [s.id for s in store.sessions.history()] == ["live", "old"]
        assert store.snapshots.for_session("live") == {"lights": {"1": {"on": True}}}
        # v4: the snapshots of sessions that had ended are taken as put back; a running
        # one's waits for its end.
        assert store.snapshots.pending_restores() == []
        store.sessions.save(dataclasses.replace(live, status="stopped", ended_at=T0 + 200))
        assert [(p.session_id, p.transition) for p in store.snapshots.pending_restores()] == [
            ("live", None)  # its v1 routine_data names no restore_transition
        ]
        assert store.dnd.states("bedroom") == {"anna": {"state": "on"}}
        assert store.profiles.get("sam") == {"name": "sam"}
        assert store.profiles.times("sam") == (T0, T0 + 5)
        # v2 gave feedback a profile: old rows got their session's.
        assert [f["data"] for f in store.feedback.for_profile("sam")] == [{"rating": 4}]
        assert store.feedback.for_session("live")[0]["profile"] is None
        assert store.feedback.for_session("old")[0]["profile"] == "sam"
        # ...and the new commands table works, for old sessions too.
        store.sessions.log_command("old", T0 + 80, "note", {"x": 1})
        assert [c["action"] for c in store.sessions.commands("old")] == ["note"]
        # New rows go on after the old ones; a session takes one feedback (v5).
        store.sessions.save(record("new", profile="sam", started_at=T0 + 300))
        new_id = store.feedback.add("new", "sam", {"rating": 5}, T0 + 390)
        assert new_id > store.feedback.for_session("old")[0]["id"]
        with pytest.raises(AlreadyGiven):
            store.feedback.add("old", "sam", {"rating": 5}, T0 + 90)


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
    monkeypatch.setattr(schema_module, "MIGRATIONS", [*MIGRATIONS, broken])
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
            store.sessions.save(record(session, room=f"room-{tag}", status="running",
                                      ended_at=None, started_at=T0 + i))  # fmt: skip
        elif kind == 1:
            store.sessions.log_command(session, T0 + i, "next", {"i": i})
        elif kind == 2:
            store.feedback.add(session, tag, {"i": i}, T0 + i)
        else:
            store.profiles.put(f"{tag}-{i}", {"name": f"{tag}-{i}"})
            # end the session, so the next one can run in this room
            store.sessions.save(record(session, room=f"room-{tag}", started_at=T0 + i - 3))


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
            sessions = store.sessions.history(room=f"room-{tag}", limit=1000)
            assert sorted(s.id for s in sessions) == sorted(
                f"{tag}-{i}" for i in range(0, WRITES, 4)
            )
            assert all(s.status == "finished" for s in sessions)
            assert len(store.feedback.for_profile(tag, limit=1000)) == per_tag
            for i in range(0, WRITES, 4):
                assert [c["args"] for c in store.sessions.commands(f"{tag}-{i}")] == [{"i": i + 1}]
        assert len(store.profiles.all()) == per_tag * len(tags)
        assert store.sessions.active() == []


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
        store.sessions.save(SessionRecord(
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
        active = store.sessions.active()
        assert len(active) == CRASH_SESSIONS
        assert {s.id for s in active} == {f"s{i}" for i in range(CRASH_SESSIONS)}
        assert all(s.routine_data == {"i": int(s.id[1:])} for s in active)
        assert json.loads(json.dumps(active[0].as_dict()))["deadline"] == 300.0


# --- a database that is not sound -------------------------------------------------------


def spoil_page(db: Path, table: str) -> bytes:
    """16 bytes of garbage over a table's page; the file as it is then."""
    conn = sqlite3.connect(db)
    number = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
    page = int(number.fetchone()[0])
    size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    with db.open("r+b") as f:
        f.seek((page - 1) * size + 8)
        f.write(b"\xde\xad\xbe\xef" * 4)
    return db.read_bytes()


def test_a_damaged_page_is_refused_at_open_naming_the_backup_and_the_file_kept(
    db: Path,
) -> None:
    store = Store(db)
    store.open(backup=True)
    store.profiles.put("sam", {"name": "sam"}, at=T0)
    store.close()
    store.open(backup=True)  # the backup with sam in it
    store.close()
    newest = backups.newest(db.parent / "backups")
    spoiled = spoil_page(db, "profiles")

    with pytest.raises(StorageError) as caught:
        Store(db).open(backup=True)

    assert caught.value.kind == "damaged"
    message = caught.value.message
    assert message.startswith(f"{db} is damaged (")
    assert "\n" not in message  # one line
    assert message.endswith(
        f"stop ambiance and restore the newest backup: ambiance restore {newest}"
    )
    assert db.read_bytes() == spoiled  # never written, deleted or moved
    assert backups.newest(db.parent / "backups") == newest  # no copy of it


def test_an_empty_file_is_a_new_database_unless_backups_say_it_had_data(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")  # what SQLite makes for a new database, too
    store = Store(db)
    store.open(backup=True)
    store.profiles.put("sam", {"name": "sam"}, at=T0)
    store.close()
    db.write_bytes(b"")  # emptied: now there are backups of it

    with pytest.raises(StorageError, match=r"is empty \(0 bytes\), but it had data") as caught:
        Store(db).open()
    assert "ambiance restore " in caught.value.message
    assert db.read_bytes() == b""


def test_a_sqlite_database_that_is_not_ours_is_refused_and_kept(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(
        StorageError, match=r"is a SQLite database, but not ambiance's \(tables: recipes\)"
    ):
        Store(db).open()
    assert db.read_bytes() == before


def test_a_missing_table_of_its_version_is_refused(db: Path) -> None:
    with Store(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE dnd")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=r"lacks tables of ambiance's schema version .*: dnd"):
        Store(db).open()


def test_damage_found_while_open_stays_and_refuses_writes(db: Path) -> None:
    with Store(db) as store:
        store.profiles.put("sam", {"name": "sam"}, at=T0)
    with Store(db) as store:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        spoil_page(db, "profiles")
        other.execute("BEGIN IMMEDIATE")
        other.execute("PRAGMA user_version = 4")  # the store's cache of the page is stale
        other.execute("COMMIT")
        other.close()
        with pytest.raises(StorageError, match="is damaged"):
            store.profiles.all()
        with pytest.raises(StorageError, match=r"^not saved: .* is damaged"):
            store.dnd.save("bedroom", "anna", {"state": "on"})  # another table, all the same
        assert store.db.problem is not None and store.db.problem.kind == "damaged"
        assert store.db.probe() is False
        assert store.sessions.history() == []  # reads of sound pages go on
        assert store.db.problem.kind == "damaged"
