"""The API over a database that gets damaged while the service runs: every answer is the
API's error shape (503, `storage_error`) naming the backup to restore, health says it,
and nothing more is written into the damaged file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ambiance.infra.store import backups
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
