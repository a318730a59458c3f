"""Backups and restores of a real database file: made with SQLite's online backup after a
check, a few kept, never of a damaged database; put back only over a stopped service,
keeping what they replace."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from ambiance.errors import StorageError
from ambiance.infra.store import DB_NAME, SCHEMA_VERSION, Store, backups
from ambiance.infra.store.restore import restore
from tests.infra.store.helpers import T0

SAM = {"name": "sam", "pressure": "medium"}


def opened(data: Path) -> Store:
    """The store as the service opens it: checked, then backed up."""
    store = Store.in_dir(data)
    store.open(backup=True)
    return store


def spoil(db: Path) -> None:
    """16 bytes of garbage over the profiles' page, then a write from another connection
    (the store's cache of the page is stale), as a failing disk leaves a file."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = other.execute("SELECT rootpage FROM sqlite_master WHERE name = 'profiles'")
        number = int(page.fetchone()[0])
        size = int(other.execute("PRAGMA page_size").fetchone()[0])
        with db.open("r+b") as f:
            f.seek((number - 1) * size + 8)
            f.write(b"\xde\xad\xbe\xef" * 4)
        other.execute("BEGIN IMMEDIATE")
        other.execute("PRAGMA user_version = 4")
        other.execute("COMMIT")
    finally:
        other.close()


def names(data: Path) -> list[str]:
    return [p.name for p in backups.listing(data / "backups")]


def test_each_start_backs_up_what_changed_and_only_that(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = opened(data)
    store.close()
    first = backups.listing(data / "backups")
    assert len(first) == 1  # the new database, with its tables: there was one here
    assert stat.S_IMODE(first[0].stat().st_mode) == 0o600  # profiles are personal
    assert stat.S_IMODE((data / "backups").stat().st_mode) == 0o700

    store = opened(data)  # nothing changed: no second copy to push the older ones out
    store.profiles.put("sam", SAM, at=T0)
    store.close()
    assert backups.listing(data / "backups") == first

    store = opened(data)
    store.close()
    newest = backups.newest(data / "backups")
    assert newest is not None and newest != first[0]
    # A backup is a whole database on its own: one file, the data in it.
    conn = sqlite3.connect(f"file:{newest}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT name FROM profiles").fetchall() == [("sam",)]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_the_newest_seven_are_kept_and_nothing_else_is_touched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.in_dir(data) as store:
        (data / "backups").mkdir()
        mine = data / "backups" / "my-own-copy.db"
        mine.write_bytes(b"the user's")
        made = []
        for day in range(10):
            store.profiles.put("sam", {**SAM, "day": day}, at=T0 + day)
            made.append(store.db.backup(at=T0 + day * 86400))
        assert all(path is not None for path in made)
        assert backups.listing(data / "backups") == list(reversed(made[-backups.KEEP :]))
        assert mine.read_bytes() == b"the user's"
        # Two in the same second get names of their own, in order.
        store.profiles.put("alex", SAM, at=T0)
        again = store.db.backup(at=T0 + 9 * 86400)
        assert again is not None and again.name.endswith("-2.db")
        assert backups.newest(data / "backups") == again


def test_a_damaged_database_is_never_backed_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = opened(data)
    store.profiles.put("sam", SAM, at=T0)
    good = backups.listing(data / "backups")
    spoil(store.db.path)
    with pytest.raises(StorageError, match="is damaged") as caught:
        store.db.backup()
    assert caught.value.kind == "damaged"
    assert backups.listing(data / "backups") == good
    assert store.db.problem is not None and store.db.problem.kind == "damaged"
    store.close()


def test_restore_puts_a_backup_back_and_keeps_what_it_replaces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.in_dir(data) as store:
        store.profiles.put("sam", SAM, at=T0)
        backup = store.db.backup()
        store.profiles.put("alex", SAM, at=T0)
    assert backup is not None
    db = data / DB_NAME
    db.write_bytes(db.read_bytes()[:100])  # cut short
    Path(f"{db}-wal").write_bytes(b"a stale wal")  # must not be read into the restored one
    cut = db.read_bytes()

    replaced = restore(backup, db, T0)

    assert replaced is not None and replaced.parent == data / "backups"
    assert replaced.name.startswith("replaced-")
    assert replaced.read_bytes() == cut
    assert Path(f"{replaced}-wal").read_bytes() == b"a stale wal"
    assert not Path(f"{db}-wal").exists()
    with Store(db) as store:
        assert [p["name"] for p in store.profiles.all()] == ["sam"]
    assert backup.exists()  # restoring copies: the backup stays


def test_restore_is_refused_while_a_service_has_the_database_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.in_dir(data) as store:
        backup = store.db.backup()
        assert backup is not None
        before = (data / DB_NAME).read_bytes()
        with pytest.raises(StorageError, match=f"ambiance is running with the data dir {data}"):
            restore(backup, data / DB_NAME, T0)
        assert (data / DB_NAME).read_bytes() == before
    assert restore(backup, data / DB_NAME, T0) is not None  # stopped: it goes


@pytest.mark.parametrize("kind", ["missing", "empty", "not-sqlite", "damaged", "not-ours", "newer"])
def test_restore_refuses_what_is_not_a_sound_backup(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    with Store.in_dir(data) as store:
        store.profiles.put("sam", SAM, at=T0)
        good = store.db.backup()
    assert good is not None
    source = tmp_path / "candidate.db"
    if kind == "empty":
        source.write_bytes(b"")
    elif kind == "not-sqlite":
        source.write_text("hello " * 100)
    elif kind == "damaged":
        source.write_bytes(good.read_bytes())
        spoil(source)
    elif kind == "not-ours":
        conn = sqlite3.connect(source)
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.commit()
        conn.close()
    elif kind == "newer":
        source.write_bytes(good.read_bytes())
        conn = sqlite3.connect(source)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
    before = (data / DB_NAME).read_bytes()
    with pytest.raises(StorageError, match=str(source)):
        restore(source, data / DB_NAME, T0)
    assert (data / DB_NAME).read_bytes() == before
    assert not list((data / "backups").glob("replaced-*"))
