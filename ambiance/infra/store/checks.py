"""Is this file our database, and is it sound? Asked before anything writes to it.

`file_state()` looks at the file itself: missing (a new database), empty, or a SQLite
file. An empty `ambiance.db` is also what SQLite makes for a brand-new database, so it is
taken as new only when nothing says it had data: when backups of it exist, its data is
gone, and the start is refused with the backup to restore. `check_contents()` asks SQLite
(`PRAGMA quick_check`) and compares the tables with those our migrations make.

Nothing here writes, deletes or moves the file: a database that fails is kept as it is,
for the user to restore a backup over it (or to look into it).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from pathlib import Path
from typing import Final, Literal

from ambiance.errors import ConfigError, StorageError
from ambiance.infra.store import backups, faults, schema
from ambiance.infra.store.faults import DAMAGED, IO

log = logging.getLogger(__name__)

HEADER: Final = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database
SHOWN_PROBLEMS: Final = 3  # quick_check's findings named in the one line

State = Literal["new", "database"]


def damaged(db: Path, what: str, then: str | None = None) -> StorageError:
    """`<db> <what>: <then>`, by default how to get the data back (the file is kept)."""
    to_do = backups.restore_hint(db) if then is None else then
    return StorageError(f"{db} {what}: {to_do}", kind=DAMAGED, path=str(db))


def inspect(db: Path) -> None:
    """What `Database.open()` would refuse, found without writing (`ambiance check`)."""
    if file_state(db) == "new":
        return
    # Read-only. Without a -wal no ambiance has it open (a running one keeps its -wal), so
    # it is read as immutable: no -wal or -shm is made beside it just to look.
    flag = "mode=ro" if Path(f"{db}-wal").exists() else "immutable=1"
    try:
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?{flag}", uri=True, isolation_level=None)
        try:
            check_contents(conn, db)
            found = schema.user_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise faults.storage_error(
            exc, db, "cannot read the database", restore=lambda: backups.restore_hint(db)
        ) from exc
    if found > len(schema.MIGRATIONS):
        raise newer(db, found)


def newer(db: Path, found: int) -> ConfigError:
    """A database from a newer ambiance: refused, and left untouched."""
    return ConfigError(
        [
            f"{db}: the database is at schema version {found}, but this ambiance knows "
            f"versions up to {len(schema.MIGRATIONS)}; it was written by a newer "
            "ambiance: upgrade, or point the data dir elsewhere"
        ]
    )


def file_state(db: Path) -> State:
    """ "new" (no file, or an empty one with no backups) or "database" (a SQLite file);
    `StorageError` for anything else."""
    try:
        with db.open("rb") as f:
            head = f.read(len(HEADER))
    except FileNotFoundError:
        latest = backups.newest(backups.folder_of(db))
        if latest is not None:  # moved aside, most likely, to start anew: said all the same
            log.warning(
                "store: no database at %s, a new one is made; the backups of the last one "
                "are kept (ambiance restore %s brings it back)",
                db,
                latest,
            )
        return "new"
    except IsADirectoryError:
        raise damaged(db, "is a folder, not a database file") from None
    except OSError as exc:
        raise StorageError(
            f"{db} cannot be read ({exc.strerror or exc}): make it readable for the user "
            "ambiance runs as",
            kind=IO,
            path=str(db),
        ) from None
    if not head:
        if backups.newest(backups.folder_of(db)) is not None:
            raise damaged(db, "is empty (0 bytes), but it had data (there are backups of it)")
        log.warning("store: %s is empty and has no backups: taken as a new database", db)
        return "new"
    if head != HEADER:
        raise damaged(db, f"is not a SQLite database (it starts with {head[:8]!r})")
    return "database"


def check_contents(conn: sqlite3.Connection, db: Path, then: str | None = None) -> None:
    """SQLite's quick_check, then our tables for the schema version it says it is at;
    `StorageError` saying what is wrong and `then` what to do (`damaged`)."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        # One line: a finding may span lines, under a "*** in database main ***" header.
        found = [
            line.strip()
            for row in rows
            for line in str(row[0]).splitlines()
            if line.strip() and not line.startswith("***")
        ]
        version = schema.user_version(conn)
        tables = _tables(conn)
    except sqlite3.DatabaseError as exc:  # so damaged that the check itself cannot run
        raise damaged(db, f"is damaged ({exc})", then) from None
    if found != ["ok"]:
        more = f"; {len(found) - SHOWN_PROBLEMS} more" if len(found) > SHOWN_PROBLEMS else ""
        raise damaged(db, f"is damaged ({'; '.join(found[:SHOWN_PROBLEMS])}{more})", then)
    if version > len(schema.MIGRATIONS):
        return  # from a newer ambiance: the database says so (and refuses it) itself
    missing = sorted(expected_tables(version) - tables)
    if version == 0 and tables:
        raise damaged(
            db, f"is a SQLite database, but not ambiance's (tables: {_names(tables)})", then
        )
    if missing:
        raise damaged(
            db,
            f"lacks tables of ambiance's schema version {version}: {', '.join(missing)}",
            then,
        )


@functools.cache
def expected_tables(version: int) -> frozenset[str]:
    """The tables our migrations make up to `version` (found by running them in memory)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in schema.MIGRATIONS[:version]:
            for statement in schema.statements(script):
                conn.execute(statement)
        return frozenset(_tables(conn))
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {str(row[0]) for row in rows}


def _names(tables: set[str]) -> str:
    shown = sorted(tables)[:5]
    return ", ".join(shown) + (", ..." if len(tables) > len(shown) else "")
