"""Writes held to the end of the loop's turn: one transaction, in order, flushed first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ambiance.errors import StorageError
from ambiance.infra.store import SessionRecord, Store
from tests.infra.store.helpers import T0, raw, record


@pytest.mark.anyio
async def test_saves_soon_go_together_at_the_end_of_the_loops_turn(store: Store, db: Path) -> None:
    builds: list[str] = []

    def build(id: str, index: int) -> Callable[[], SessionRecord]:
        def make() -> SessionRecord:
            builds.append(id)
            return record(id, room=id, status="running", ended_at=None, index=index)

        return make

    store.sessions.save_soon("a", build("a", 1))
    store.sessions.log_command_soon("a", T0, "start", {})  # refers to "a": written after it
    store.sessions.save_soon("b", build("b", 1))
    store.sessions.save_soon("a", build("a", 2))  # the later change wins, built once
    store.dnd.save_soon("a", "anna", {"state": "on"}, at=T0)
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
    assert [c["action"] for c in store.sessions.commands("a")] == ["start"]
    assert store.dnd.states("a") == {"anna": {"state": "on"}}


@pytest.mark.anyio
async def test_any_other_call_writes_the_saves_soon_first(store: Store) -> None:
    store.sessions.save_soon("s1", lambda: record("s1", status="running", ended_at=None))
    # The snapshot refers to the session: it must be in the store by now.
    store.snapshots.save("s1", "lights", {"on": True})
    assert store.snapshots.for_session("s1") == {"lights": {"on": True}}
    store.sessions.save_soon("s2", lambda: record("s2", room="lounge"))
    assert store.sessions.get("s2") is not None
    store.sessions.save_soon("s3", lambda: record("s3", room="hall"))
    store.close()  # closing writes them too
    store.open()
    assert store.sessions.get("s3") is not None


@pytest.mark.anyio
async def test_a_save_soon_that_fails_is_logged_and_the_others_are_kept(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> SessionRecord:
        raise ValueError("cannot build")

    store.sessions.save(record("r1", status="running", ended_at=None))
    store.sessions.save_soon("broken", broken)
    # A second running session in the room: refused by the database, reported.
    store.sessions.save_soon("r2", lambda: record("r2", status="running", ended_at=None))
    store.sessions.save_soon("ok", lambda: record("ok", room="lounge"))
    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert store.sessions.get("ok") is not None
    assert store.sessions.get("r2") is None
    assert "session broken not saved" in caplog.text
    assert "session r2 not saved" in caplog.text


@pytest.mark.anyio
async def test_a_batch_that_fails_is_kept_and_written_at_the_next_call(
    store: Store, db: Path
) -> None:
    builds: list[str] = []

    def build() -> SessionRecord:
        builds.append("s1")
        return record("s1", status="running", ended_at=None)

    # Another connection holds the write lock, and the store does not wait for it: the
    # whole batch fails, as on a full disk.
    other = raw(db)
    other.execute("BEGIN IMMEDIATE")
    store.db._require().execute("PRAGMA busy_timeout = 0")
    store.sessions.save_soon("s1", build)
    store.sessions.log_command_soon("s1", T0, "start", {})
    store.dnd.save_soon("bedroom", "anna", {"state": "on"}, at=T0)
    turn_over = asyncio.Event()
    asyncio.get_running_loop().call_soon(turn_over.set)
    await turn_over.wait()
    problem = store.db.problem
    assert problem is not None and problem.kind == "busy"
    assert problem.message.startswith("a change was not saved (kept, to be saved once it can be)")
    assert store.sessions.get("s1") is None  # tried again first, failed again: still kept
    with pytest.raises(StorageError, match="is locked by another process"):
        store.flush()  # a command that must be saved hears of it
    other.execute("COMMIT")
    other.close()
    # The lock is free: the next call writes them first, in their order, in one go.
    assert store.sessions.get("s1") is not None
    assert store.db.problem is None
    assert builds == ["s1"]  # built once, when the batch went through
    assert [c["action"] for c in store.sessions.commands("s1")] == ["start"]
    assert store.dnd.states("bedroom") == {"anna": {"state": "on"}}


def test_without_a_running_loop_a_save_soon_is_an_error_and_save_writes_now(
    store: Store, db: Path
) -> None:
    # No loop, so no end of its turn: the caller writes now, and says so.
    with pytest.raises(RuntimeError, match="no loop is running"):
        store.sessions.save_soon("s1", lambda: record("s1"))
    with pytest.raises(RuntimeError, match="no loop is running"):
        store.sessions.log_command_soon("s1", T0, "start", {})
    with pytest.raises(RuntimeError, match="no loop is running"):
        store.dnd.save_soon("bedroom", "anna", {"state": "off"})
    store.sessions.save(record("s1"))
    store.dnd.save("bedroom", "anna", {"state": "off"})
    with raw(db) as conn:
        assert conn.execute("SELECT id FROM sessions").fetchone()[0] == "s1"
        assert conn.execute("SELECT phone FROM dnd").fetchone()[0] == "anna"
        assert conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0  # none held
    assert store.sessions.commands("s1") == []


@pytest.mark.anyio
async def test_a_save_soon_on_a_closed_store_is_an_error(store: Store) -> None:
    store.close()
    with pytest.raises(RuntimeError, match="not open"):
        store.sessions.save_soon("s1", lambda: record("s1"))
