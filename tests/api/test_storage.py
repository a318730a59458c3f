"""The API over a database that gets damaged while the service runs: every answer is the
API's error shape (503, `storage_error`) naming the backup to restore, health says it,
and nothing more is written into the damaged file."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from ambiance.infra.store import backups
from ambiance.service import BACKUP_INTERVAL, STORE_RETRY
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio

SAM = {"name": "sam", "display_name": "Sam", "pressure": "medium"}


def spoil_profiles(db: Path) -> None:
    """16 bytes of garbage over the profiles' page, then a write from another connection,
    so that the service reads the file again (its cache of the page is no longer valid)."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the pages into the file itself
        page = other.execute("SELECT rootpage FROM sqlite_master WHERE name = 'profiles'")
        number = int(page.fetchone()[0])
        size = int(other.execute("PRAGMA page_size").fetchone()[0])
        with db.open("r+b") as f:
            f.seek((number - 1) * size + 8)
            f.write(b"\xde\xad\xbe\xef" * 4)
        other.execute("BEGIN IMMEDIATE")
        other.execute("PRAGMA user_version = 4")  # a write: the service's cache is stale
        other.execute("COMMIT")
    finally:
        other.close()


def contents(db: Path) -> tuple[bytes, bytes]:
    """The database file and its -wal, byte for byte."""
    return db.read_bytes(), Path(f"{db}-wal").read_bytes()


async def test_damage_found_while_running_is_a_clear_503_and_degraded_health(api: Api) -> None:
    c = api.client
    assert (await c.post("/api/v1/profiles", json=SAM)).status_code == 201
    db = api.core.store.db.path
    newest = backups.newest(db.parent / "backups")  # the one made at start
    assert newest is not None
    spoil_profiles(db)

    r = await c.get("/api/v1/profiles")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "storage_error"
    assert error["detail"] == {"kind": "damaged", "path": str(db)}
    assert error["message"].startswith(f"{db} is damaged (database disk image is malformed)")
    assert error["message"].endswith(f"restore the newest backup: ambiance restore {newest}")

    health = (await c.get("/api/v1/health")).json()
    assert health["status"] == "degraded"
    assert health["store"]["available"] is False
    assert health["store"]["error"] == error["message"]

    # Nothing more goes into the damaged file: a new profile is refused, a command is
    # answered with the error (the room obeys: the person in it is not kept waiting).
    before = contents(db)
    r = await c.post("/api/v1/profiles", json={**SAM, "name": "alex"})
    assert r.status_code == 503
    assert r.json()["error"]["message"] == f"not saved: {error['message']}"
    r = await c.post("/api/v1/rooms/bedroom/spa")
    assert (r.status_code, r.json()["error"]["code"]) == (503, "storage_error")
    assert api.core.rooms["bedroom"].session is not None
    assert contents(db) == before
    # Damage does not pass by itself: the health stays degraded until a restore.
    assert api.core.store.db.probe() is False
    assert (await c.get("/api/v1/health")).json()["status"] == "degraded"


async def test_a_store_that_fails_is_tried_again_until_health_recovers(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    c = api.client
    db = api.core.store.db.path
    # Another process holds the write lock, and the store does not wait for it.
    api.core.store.db._require().execute("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with caplog.at_level(logging.INFO, logger="ambiance.core.health"):
        r = await c.post("/api/v1/rooms/bedroom/spa")
        assert (r.status_code, r.json()["error"]["detail"]["kind"]) == (503, "busy")
        assert (await c.post("/api/v1/profiles", json=SAM)).status_code == 503
        # The room obeys: its lights were snapshotted and changed, the snapshot not saved.
        assert await api.core.rooms["bedroom"].settle(2.0)
        health = (await c.get("/api/v1/health")).json()
        assert (health["status"], health["store"]["available"]) == ("degraded", False)
        api.clock.advance(STORE_RETRY)  # tried again: still locked
        assert (await c.get("/api/v1/health")).json()["status"] == "degraded"

        other.execute("COMMIT")  # the lock is let go; nobody writes: the next try sees it
        other.close()
        api.clock.advance(STORE_RETRY)
        assert (await c.get("/api/v1/health")).json()["status"] == "ok"
    said = [r.getMessage() for r in caplog.records if r.name == "ambiance.core.health"]
    assert [m.split(" (sqlite) ")[1].split(":")[0] for m in said] == ["is unavailable", "is back"]
    # What the 503 said was kept is saved now: the session and its start.
    session = api.core.rooms["bedroom"].session
    assert session is not None
    stored = api.core.store.sessions.get(session.id)
    assert stored is not None and stored.status == "running"
    assert [c["action"] for c in api.core.store.sessions.commands(session.id)] == ["start"]
    assert set(api.core.store.snapshots.for_session(session.id)) == {"lights"}


async def test_a_backup_a_day_while_running(api: Api) -> None:
    folder = api.core.store.db.path.parent / "backups"
    at_start = backups.listing(folder)
    assert len(at_start) == 1
    assert (await api.client.post("/api/v1/profiles", json=SAM)).status_code == 201
    api.clock.advance(BACKUP_INTERVAL)
    newest = backups.newest(folder)
    assert newest is not None and newest not in at_start
    conn = sqlite3.connect(f"file:{newest}?mode=ro", uri=True)
    assert conn.execute("SELECT name FROM profiles").fetchall() == [("sam",)]
    conn.close()
    api.clock.advance(BACKUP_INTERVAL)  # nothing changed since: nothing new
    assert backups.newest(folder) == newest
