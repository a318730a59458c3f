"""The store: everything that must outlive the process, in one SQLite file in the data dir.

What it keeps, so that nothing is lost when the service is killed (kill -9) or restarts:
running sessions with their stage deadlines (and the routine as the session uses it, so a
session resumes even if the YAML changed meanwhile), the commands given, each device's
snapshot taken at a session's start (so the room can still be put back), the
do-not-disturb state sent to each phone, profiles, feedback and session history.

How it is used
    The service calls it straight from the asyncio loop and from worker threads. Every
    public method is one small transaction on an indexed table and takes well under a
    millisecond, so it is synchronous on purpose: a thread hop per call would cost more
    than the call. One connection, guarded by a `threading.Lock`, serves every thread;
    another process (`ambiance pair`, a second service by mistake) has its own
    connection, and SQLite's locking plus `busy_timeout` make the two take turns.

    The exceptions are `save_session_soon` and `log_command_soon`, which the rooms use
    for every session change: the stage timers of many rooms may fire at the same moment,
    and a commit each (~0.1 ms) would make the last room's change late by all the
    others'. Those writes wait for the end of the event loop's turn and go in one
    transaction; any other call to the store writes them first, so no read or write ever
    sees the store without them.

Durability
    WAL journal with `synchronous=NORMAL`: once a method returns, its transaction is in
    the WAL file (written, in the OS page cache), so a killed process loses nothing;
    see `_connect` for why FULL is not needed for that.

Schema versions
    `MIGRATIONS[i]` takes the database from version i to i + 1 (`PRAGMA user_version`),
    each in its own transaction. A database from a newer ambiance is refused with
    `ConfigError` and left untouched.

Bad rows
    JSON columns are TEXT written with `json.dumps(sort_keys=True)`. A row that cannot be
    decoded (edited by hand, a disk fault) is logged and skipped; it never crashes the
    service. An unreadable *active* session would keep its room blocked forever (one
    active session per room), so `active_sessions()` also marks it stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from ambiance.errors import ConfigError, Conflict, InvalidInput

__all__ = [
    "ACTIVE",
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "PendingRestore",
    "SessionRecord",
    "Store",
]

log = logging.getLogger(__name__)

DB_NAME: Final = "ambiance.db"  # the file's name inside the data dir (`Store.in_dir`)
BUSY_TIMEOUT_MS: Final = 5000  # how long a writer waits for another connection's turn

STATUSES: Final = ("running", "paused", "finished", "stopped")
ACTIVE: Final = ("running", "paused")
ENDED: Final = ("finished", "stopped")

T = TypeVar("T")

# --- schema ------------------------------------------------------------------------------

_V1 = """
-- One row per session, live or over: the live ones are what a restart resumes, the
-- others are the history. `routine_data` is the routine (and scenes) as this session
-- uses them, adapted to the profile: JSON that only the engine reads.
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    room             TEXT NOT NULL,
    routine          TEXT NOT NULL,
    routine_data     TEXT NOT NULL,
    profile          TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('running', 'paused', 'finished', 'stopped')),
    stage_index      INTEGER NOT NULL,
    started_at       REAL NOT NULL,
    stage_started_at REAL NOT NULL,
    deadline         REAL,
    paused_remaining REAL,
    ended_at         REAL,
    updated_at       REAL NOT NULL
);
-- A room runs at most one session: the database says so too, so that two writers (a
-- bug, or two processes on one data dir) cannot both resume a session in one room.
CREATE UNIQUE INDEX sessions_one_active_per_room
    ON sessions (room) WHERE status IN ('running', 'paused');
CREATE INDEX sessions_by_start ON sessions (started_at);

-- What each device looked like before the session changed it (opaque JSON per device),
-- so the room can be put back even after a crash mid-session.
CREATE TABLE snapshots (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    device     TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (session_id, device)
);

-- The last do-not-disturb message sent to each phone of a room (to know after a restart
-- what the phones were told, and to switch them off again).
CREATE TABLE dnd (
    room       TEXT NOT NULL,
    phone      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (room, phone)
);

CREATE TABLE profiles (
    name       TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    at         REAL NOT NULL
);
CREATE INDEX feedback_by_session ON feedback (session_id);
"""

_V2 = """
-- The commands given during a session (next, pause, extend...), oldest first: what the
-- history shows, and what tells apart a stage the person skipped from one that ran out.
CREATE TABLE commands (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    at         REAL NOT NULL,
    action     TEXT NOT NULL,
    args       TEXT NOT NULL
);
CREATE INDEX commands_by_session ON commands (session_id, id);

-- Feedback names its profile itself: a profile's feedback is read without a join, and it
-- stays that profile's even if the session row is ever pruned. Version 1 feedback
-- belonged to its session's profile, so that is what it gets.
ALTER TABLE feedback ADD COLUMN profile TEXT;
UPDATE feedback
    SET profile = (SELECT sessions.profile FROM sessions WHERE sessions.id = feedback.session_id);
CREATE INDEX feedback_by_profile ON feedback (profile, at);

-- History filtered by room or by profile, newest first, without a scan.
CREATE INDEX sessions_by_room ON sessions (room, started_at);
CREATE INDEX sessions_by_profile ON sessions (profile, started_at);
"""

_V3 = """
-- A session's routine (with its scenes) is fixed for the session's life. In a table of its
-- own it is written once, and each stage change rewrites only the small session row: about
-- 200 bytes instead of 5-10 KB with overflow pages, every few minutes of every session
-- (less time on the event loop, less wear on a Raspberry Pi's SD card).
CREATE TABLE session_routines (
    session_id   TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    routine_data TEXT NOT NULL
);
INSERT INTO session_routines (session_id, routine_data) SELECT id, routine_data FROM sessions;
ALTER TABLE sessions DROP COLUMN routine_data;
"""

_V4 = """
-- A snapshot is kept as not yet put back until its device is back as it says. A restore
-- that a crash (or a stop while the bridge was away) cut short is then done at the next
-- start. The snapshots of sessions that ended before this version are taken as put back.
ALTER TABLE snapshots ADD COLUMN restored_at REAL;
UPDATE snapshots SET restored_at = 0
    WHERE session_id IN (SELECT id FROM sessions WHERE status IN ('finished', 'stopped'));
"""

# MIGRATIONS[i] takes a database from version i to i + 1. Append only: a script that has
# shipped is never edited, since databases out there are already past it.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4]
SCHEMA_VERSION: Final = len(MIGRATIONS)  # the version `open()` brings a database to


def _statements(script: str) -> Iterator[str]:
    """Split a script into single statements (`sqlite3.complete_statement` knows triggers).

    `executescript()` would be simpler, but it COMMITs first, so a migration could not run
    inside the transaction that checked the version and holds the write lock.
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    # What is left is comments (nothing to run) or an unfinished statement, which SQLite
    # is given so that it says what is wrong with it.
    if any(line.strip() and not line.strip().startswith("--") for line in buffer.splitlines()):
        yield buffer


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRecord:
    """One session as stored. Field names match `Session.record()` / `from_record()`:
    `SessionRecord(room=..., updated_at=now, **session.record())` and
    `Session.from_record(record.as_dict(), clock)`."""

    id: str
    room: str
    routine: str
    routine_data: dict[str, Any]
    profile: str | None
    status: str  # 'running' | 'paused' | 'finished' | 'stopped'
    index: int
    started_at: float
    stage_started_at: float
    deadline: float | None
    paused_remaining: float | None
    ended_at: float | None
    updated_at: float

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dumps(value: Any) -> str:
    # sort_keys: the same data is the same text (stable diffs, comparable rows).
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads_dict(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return cast(dict[str, Any], value)


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


# A write deferred to the end of the loop's turn; a session save returns its record.
_Deferred = Callable[[sqlite3.Connection], "SessionRecord | None"]

# A session with its routine (from its own table, see _V3); a session row whose routine
# row is missing reads as NULL there, and is then skipped as unreadable.
_SELECT_SESSIONS = (
    "SELECT s.*, r.routine_data FROM sessions AS s"
    " LEFT JOIN session_routines AS r ON r.session_id = s.id"
)


def _session_from_row(row: sqlite3.Row) -> SessionRecord:
    """Build a record, checking types: a row edited by hand fails here, not in the engine."""
    status = str(row["status"])
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    profile = row["profile"]
    return SessionRecord(
        id=str(row["id"]),
        room=str(row["room"]),
        routine=str(row["routine"]),
        routine_data=_loads_dict(row["routine_data"]),
        profile=None if profile is None else str(profile),
        status=status,
        index=int(row["stage_index"]),
        started_at=float(row["started_at"]),
        stage_started_at=float(row["stage_started_at"]),
        deadline=_optional_float(row["deadline"]),
        paused_remaining=_optional_float(row["paused_remaining"]),
        ended_at=_optional_float(row["ended_at"]),
        updated_at=float(row["updated_at"]),
    )


def _feedback_from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "session_id": str(row["session_id"]),
        "profile": row["profile"],
        "at": float(row["at"]),
        "data": _loads_dict(row["data"]),
    }


@dataclass(frozen=True)
class PendingRestore:
    """A device of a room that an ended session left changed: put it back as `data` says."""

    room: str
    session_id: str
    device: str
    data: Any  # the snapshot as the room encoded it
    transition: float | None  # the session's routine's restore_transition, if readable


def _pending_restore_from_row(row: sqlite3.Row) -> PendingRestore:
    transition = None
    if row["routine_data"] is not None:
        value = _loads_dict(row["routine_data"]).get("routine", {}).get("restore_transition")
        transition = None if value is None else float(value)
    return PendingRestore(
        room=str(row["room"]),
        session_id=str(row["session_id"]),
        device=str(row["device"]),
        data=json.loads(row["data"]),
        transition=transition,
    )


def _command_from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "session_id": str(row["session_id"]),
        "at": float(row["at"]),
        "action": str(row["action"]),
        "args": _loads_dict(row["args"]),
    }


def _decode(rows: list[sqlite3.Row], build: Callable[[sqlite3.Row], T], what: str) -> list[T]:
    """Decode every row that can be; log and skip the others."""
    out: list[T] = []
    for row in rows:
        try:
            out.append(build(row))
        except (ValueError, TypeError, KeyError) as exc:
            log.error("store: skipping unreadable %s row %s: %s", what, _row_key(row), exc)
    return out


def _row_key(row: sqlite3.Row) -> str:
    keys = row.keys()
    for key in ("id", "name"):
        if key in keys:
            return f"{key}={row[key]!r}"
    return "(" + ", ".join(f"{k}={row[k]!r}" for k in keys if k not in ("data", "payload")) + ")"


# --- the store ---------------------------------------------------------------------------


class Store:
    """The SQLite store. `open()` before use, `close()` after (or `with Store(path):`)."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the database file; its folder is created by `open()`
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Writes deferred to the end of this turn of the loop, in the order of their first
        # request: session saves keyed by id (a later change replaces the build in place),
        # command logs and DND states by a number. Guarded by `_lock`.
        self._pending: dict[str | int, tuple[str, _Deferred]] = {}  # key -> (what, write)
        self._deferred = itertools.count()  # keys of deferred writes that are not sessions
        self._flush_scheduled = False
        # Active sessions whose routine row is known to be committed: their saves skip
        # dumping the routine again (5-10 KB of JSON). Guarded by `_lock`.
        self._routine_saved: set[str] = set()

    @classmethod
    def in_dir(cls, data_dir: Path) -> Store:
        """The store at its usual place: `<data dir>/ambiance.db`."""
        return cls(data_dir / DB_NAME)

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._flush_locked(self._conn)
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The database's schema version (`SCHEMA_VERSION` once open)."""
        with self._read() as conn:
            return _user_version(conn)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the sqlite3 module opens no transactions by itself; each
        # method says BEGIN IMMEDIATE (writes) or BEGIN (reads) and `with conn:` commits
        # or rolls back. IMMEDIATE takes the write lock up front, so a writer waits its
        # turn through busy_timeout instead of failing with "database is locked" when
        # it would upgrade a read transaction that another connection overtook.
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,  # one connection for every thread, under self._lock
            )
        except sqlite3.Error as exc:
            raise ConfigError([f"{self.path}: cannot open the database: {exc}"]) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Look at the version before anything writes (switching to WAL rewrites the
            # header): a database from a newer ambiance is refused, and left untouched.
            found, known = _user_version(conn), len(MIGRATIONS)
            if found > known:
                raise ConfigError(
                    [
                        f"{self.path}: the database is at schema version {found}, but this "
                        f"ambiance knows versions up to {known}; it was written by "
                        "a newer ambiance: upgrade, or point the data dir elsewhere"
                    ]
                )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. a file system without shared memory
                log.warning("store: %s runs in %s journal mode, not WAL", self.path, mode)
            # NORMAL, not FULL: in WAL mode a commit has been write()n to the WAL file when
            # it returns, and the OS keeps those pages even if this process is killed;
            # NORMAL only skips the fsync, which matters for a power cut or a kernel crash
            # (the last commits may be lost, the database still never corrupts). FULL
            # would fsync on every commit, milliseconds on the event loop, for that alone.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")  # per connection, off by default
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigError([f"{self.path}: not a usable SQLite database: {exc}"]) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations, each in its own transaction with its version."""
        for version, script in enumerate(MIGRATIONS, start=1):
            with conn:
                # Check under the write lock: another process opening the same file at the
                # same moment may have just applied this very step.
                conn.execute("BEGIN IMMEDIATE")
                found = _user_version(conn)
                if found >= version:
                    continue
                try:
                    for statement in _statements(script):
                        conn.execute(statement)
                except sqlite3.Error as exc:  # rolled back by `with conn`: still at `found`
                    raise ConfigError(
                        [f"{self.path}: migrating to schema version {version} failed: {exc}"]
                    ) from exc
                # PRAGMA user_version is part of the transaction: script and version
                # commit together or not at all.
                conn.execute(f"PRAGMA user_version = {version}")
                log.info("store: %s migrated to schema version %d", self.path, version)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require()
            self._flush_locked(conn)
            with conn:  # commit on success, roll back on any error
                conn.execute("BEGIN IMMEDIATE")
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # A transaction even for reads: a method's several SELECTs see one snapshot.
        with self._lock:
            conn = self._require()
            self._flush_locked(conn)
            with conn:
                conn.execute("BEGIN")
                yield conn

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the store {self.path} is not open")
        return self._conn

    # --- sessions ----------------------------------------------------------------------

    def save_session(self, record: SessionRecord) -> None:
        """Insert or update a session (by id).

        At most one session per room may be running or paused. Saving a second active
        session for a room raises `Conflict` naming the one there and changes nothing: end
        (save) the old session before saving the new one.
        """
        if record.status not in STATUSES:
            raise InvalidInput(f"unknown session status {record.status!r}")
        try:
            with self._write() as conn:
                self._upsert_session(conn, record)
            with self._lock:
                self._saved(record)
        except sqlite3.IntegrityError as exc:
            # ON CONFLICT (id) handles the primary key, so a UNIQUE failure left is the
            # one-active-session-per-room index.
            if exc.sqlite_errorcode != sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                raise
            raise self._conflict(record) from exc

    def save_session_soon(self, session_id: str, build: Callable[[], SessionRecord]) -> None:
        """Save a session at the end of this turn of the event loop, together with the
        other writes due then, in one transaction; `build()` makes the record at that
        moment (so several changes in one turn cost one write). Without a running loop,
        now. Any other call to the store writes it first.

        The session keeps its place among the deferred writes: it is written before the
        rows that refer to it (commands). A save that fails then cannot reach the caller:
        it is logged, and a later change saves the session again."""

        def write(conn: sqlite3.Connection) -> SessionRecord:
            record = build()
            self._upsert_session(conn, record)
            return record

        if not self._defer(session_id, f"session {session_id}", write):
            self.save_session(build())

    def log_command_soon(
        self, session_id: str, at: float, action: str, args: dict[str, Any]
    ) -> None:
        """`log_command` at the end of this turn of the loop (see `save_session_soon`)."""

        def write(conn: sqlite3.Connection) -> None:
            self._insert_command(conn, session_id, at, action, args)

        if not self._defer(None, "a command", write):
            self.log_command(session_id, at, action, args)

    def _defer(self, key: str | None, what: str, write: _Deferred) -> bool:
        """Queue a write for the end of the loop's turn; False without a running loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        with self._lock:
            self._pending[next(self._deferred) if key is None else key] = (what, write)
            if self._flush_scheduled:
                return True
            self._flush_scheduled = True
        loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            if self._conn is not None:
                self._flush_locked(self._conn)

    def _flush_locked(self, conn: sqlite3.Connection) -> None:
        """Do the deferred writes in one transaction (call with `_lock` held)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        saved: list[SessionRecord] = []
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for what, write in pending.values():
                    try:
                        record = write(conn)
                        if record is not None:
                            saved.append(record)
                    except sqlite3.IntegrityError as exc:
                        # Only this statement is undone; the others still commit.
                        log.error("store: %s not saved: %s", what, exc)
                    except (sqlite3.Error, OSError):
                        raise
                    except Exception:  # a record that cannot be built must not stop the rest
                        log.exception("store: %s not saved", what)
        except (sqlite3.Error, OSError) as exc:
            # Disk full, I/O error: the transaction is undone; keep the writes for the next
            # call to the store (the caller's own work comes after them, as always).
            log.error("store: %d deferred writes failed, kept to retry: %s", len(pending), exc)
            self._pending = pending
            return
        for record in saved:
            self._saved(record)

    def _upsert_session(self, conn: sqlite3.Connection, record: SessionRecord) -> None:
        conn.execute(
            """
            INSERT INTO sessions (id, room, routine, profile, status,
                stage_index, started_at, stage_started_at, deadline,
                paused_remaining, ended_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                room = excluded.room, routine = excluded.routine,
                profile = excluded.profile,
                status = excluded.status, stage_index = excluded.stage_index,
                started_at = excluded.started_at,
                stage_started_at = excluded.stage_started_at,
                deadline = excluded.deadline,
                paused_remaining = excluded.paused_remaining,
                ended_at = excluded.ended_at, updated_at = excluded.updated_at
            """,
            (
                record.id,
                record.room,
                record.routine,
                record.profile,
                record.status,
                record.index,
                record.started_at,
                record.stage_started_at,
                record.deadline,
                record.paused_remaining,
                record.ended_at,
                record.updated_at,
            ),
        )
        if record.id not in self._routine_saved:
            # Written with the session's first save; a session keeps its routine.
            conn.execute(
                "INSERT INTO session_routines (session_id, routine_data) VALUES (?, ?)"
                " ON CONFLICT (session_id) DO NOTHING",
                (record.id, _dumps(record.routine_data)),
            )

    def _saved(self, record: SessionRecord) -> None:
        """Note, once committed, that an active session's routine is in the store."""
        if record.active:
            self._routine_saved.add(record.id)
        else:
            self._routine_saved.discard(record.id)

    def _conflict(self, record: SessionRecord) -> Conflict:
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, status FROM sessions WHERE room = ? AND status IN (?, ?)",
                (record.room, *ACTIVE),
            ).fetchone()
        other = f" ({row['status']} session {row['id']})" if row is not None else ""
        return Conflict(
            f"room {record.room!r} already has an active session{other}; "
            f"cannot save session {record.id} as {record.status}"
        )

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT_SESSIONS} WHERE s.id = ?", (session_id,)).fetchall()
        found = _decode(rows, _session_from_row, "session")
        return found[0] if found else None

    def active_sessions(self) -> list[SessionRecord]:
        """The running and paused sessions (at most one per room), oldest first.

        An unreadable one cannot be resumed, and would keep its room blocked: it is logged
        and marked stopped (at its last update), which frees the room.
        """
        with self._write() as conn:
            rows = conn.execute(
                f"{_SELECT_SESSIONS} WHERE s.status IN (?, ?) ORDER BY s.started_at, s.rowid",
                ACTIVE,
            ).fetchall()
            records = _decode(rows, _session_from_row, "session")
            readable = {r.id for r in records}
            for row in rows:
                if row["id"] not in readable:
                    log.error(
                        "store: session %s in room %r cannot be resumed; marking it stopped",
                        row["id"],
                        row["room"],
                    )
                    conn.execute(
                        "UPDATE sessions SET status = 'stopped', deadline = NULL,"
                        " ended_at = COALESCE(ended_at, updated_at) WHERE id = ?",
                        (row["id"],),
                    )
        return records

    def history(
        self,
        *,
        room: str | None = None,
        profile: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionRecord]:
        """Sessions newest first (by start; live ones included, their status says so)."""
        if limit < 0 or offset < 0:
            raise InvalidInput("limit and offset must be 0 or more")
        where: list[str] = []
        params: list[Any] = []
        if room is not None:
            where.append("s.room = ?")
            params.append(room)
        if profile is not None:
            where.append("s.profile = ?")
            params.append(profile)
        sql = _SELECT_SESSIONS
        if where:
            sql += " WHERE " + " AND ".join(where)
        # rowid breaks ties between sessions started in the same instant: later insert
        # first, and the same order on every page.
        sql += " ORDER BY s.started_at DESC, s.rowid DESC LIMIT ? OFFSET ?"
        with self._read() as conn:
            rows = conn.execute(sql, (*params, limit, offset)).fetchall()
        return _decode(rows, _session_from_row, "session")

    # --- commands ----------------------------------------------------------------------

    def log_command(self, session_id: str, at: float, action: str, args: dict[str, Any]) -> int:
        """Record a command given in a session (which must be saved); returns its id."""
        with self._write() as conn:
            return self._insert_command(conn, session_id, at, action, args)

    def _insert_command(
        self, conn: sqlite3.Connection, session_id: str, at: float, action: str, args: Any
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO commands (session_id, at, action, args) VALUES (?, ?, ?, ?)",
            (session_id, at, action, _dumps(args)),
        )
        return int(cast(int, cursor.lastrowid))

    def commands(self, session_id: str) -> list[dict[str, Any]]:
        """`{"id", "session_id", "at", "action", "args"}` per command, in the order given."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM commands WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        return _decode(rows, _command_from_row, "command")

    # --- snapshots ---------------------------------------------------------------------

    def save_snapshot(self, session_id: str, device: str, data: Any) -> None:
        """Keep a device's snapshot for a (saved) session; a new one replaces the old.
        It counts as not yet put back until `mark_restored`."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO snapshots (session_id, device, data) VALUES (?, ?, ?)"
                " ON CONFLICT (session_id, device) DO UPDATE SET"
                " data = excluded.data, restored_at = NULL",
                (session_id, device, _dumps(data)),
            )

    def mark_restored(self, room: str, device: str, *, at: float | None = None) -> None:
        """Note that a room's device is back as its snapshots say (each not yet noted)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE snapshots SET restored_at = ? WHERE restored_at IS NULL AND device = ?"
                " AND session_id IN (SELECT id FROM sessions WHERE room = ?)",
                (time.time() if at is None else at, device, room),
            )

    def pending_restores(self) -> list[PendingRestore]:
        """The snapshots of ended sessions whose device was never put back, oldest first.

        A restore is cut short by a crash, or by a stop while the device was away; the
        service does it at its next start."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.room, s.id AS session_id, n.device, n.data, r.routine_data"
                " FROM snapshots n JOIN sessions s ON s.id = n.session_id"
                " LEFT JOIN session_routines r ON r.session_id = s.id"
                " WHERE n.restored_at IS NULL AND s.status IN (?, ?)"
                " ORDER BY s.started_at, n.device",
                ENDED,
            ).fetchall()
        return _decode(rows, _pending_restore_from_row, "snapshot")

    def snapshots(self, session_id: str) -> dict[str, Any]:
        """Device name -> snapshot for the session (an unreadable one is left out)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT session_id, device, data FROM snapshots WHERE session_id = ?"
                " ORDER BY device",
                (session_id,),
            ).fetchall()
        pairs = _decode(rows, lambda row: (str(row["device"]), json.loads(row["data"])), "snapshot")
        return dict(pairs)

    # --- phones ------------------------------------------------------------------------

    def save_dnd(
        self, room: str, phone: str, payload: dict[str, Any], *, at: float | None = None
    ) -> None:
        """Remember the do-not-disturb message last sent to a phone of a room."""
        with self._write() as conn:
            self._upsert_dnd(conn, room, phone, payload, at)

    def save_dnd_soon(
        self, room: str, phone: str, payload: dict[str, Any], *, at: float | None = None
    ) -> None:
        """`save_dnd` at the end of this turn of the loop (see `save_session_soon`)."""

        def write(conn: sqlite3.Connection) -> None:
            self._upsert_dnd(conn, room, phone, payload, at)

        if not self._defer(None, f"the DND state of {room}/{phone}", write):
            self.save_dnd(room, phone, payload, at=at)

    def _upsert_dnd(
        self,
        conn: sqlite3.Connection,
        room: str,
        phone: str,
        payload: dict[str, Any],
        at: float | None,
    ) -> None:
        conn.execute(
            "INSERT INTO dnd (room, phone, payload, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (room, phone) DO UPDATE SET"
            " payload = excluded.payload, updated_at = excluded.updated_at",
            (room, phone, _dumps(payload), time.time() if at is None else at),
        )

    def dnd_states(self, room: str) -> dict[str, dict[str, Any]]:
        """Phone -> the payload last sent to it, for one room."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT room, phone, payload FROM dnd WHERE room = ? ORDER BY phone", (room,)
            ).fetchall()
        pairs = _decode(rows, lambda row: (str(row["phone"]), _loads_dict(row["payload"])), "dnd")
        return dict(pairs)

    # --- profiles ----------------------------------------------------------------------

    def put_profile(self, name: str, data: dict[str, Any], *, at: float | None = None) -> None:
        """Create or replace a profile; `created_at` survives a replace."""
        now = time.time() if at is None else at
        with self._write() as conn:
            conn.execute(
                "INSERT INTO profiles (name, data, created_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET"
                " data = excluded.data, updated_at = excluded.updated_at",
                (name, _dumps(data), now, now),
            )

    def get_profile(self, name: str) -> dict[str, Any] | None:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, data FROM profiles WHERE name = ?", (name,)
            ).fetchall()
        found = _decode(rows, lambda row: _loads_dict(row["data"]), "profile")
        return found[0] if found else None

    def profile_times(self, name: str) -> tuple[float, float] | None:
        """`(created_at, updated_at)` of a profile, None if there is none."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT created_at, updated_at FROM profiles WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else (float(row["created_at"]), float(row["updated_at"]))

    def list_profiles(self) -> list[dict[str, Any]]:
        """Every profile's data, by name."""
        with self._read() as conn:
            rows = conn.execute("SELECT name, data FROM profiles ORDER BY name").fetchall()
        return _decode(rows, lambda row: _loads_dict(row["data"]), "profile")

    def delete_profile(self, name: str) -> bool:
        """Delete a profile; False if there was none. Its feedback and history stay."""
        with self._write() as conn:
            return conn.execute("DELETE FROM profiles WHERE name = ?", (name,)).rowcount > 0

    # --- feedback ----------------------------------------------------------------------

    def add_feedback(
        self, session_id: str, profile: str | None, data: dict[str, Any], at: float
    ) -> int:
        """Keep one piece of feedback on a (saved) session; returns its id."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (session_id, profile, data, at) VALUES (?, ?, ?, ?)",
                (session_id, profile, _dumps(data), at),
            )
            return int(cast(int, cursor.lastrowid))

    def feedback_for_session(self, session_id: str) -> list[dict[str, Any]]:
        """`{"id", "session_id", "profile", "at", "data"}` per feedback, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM feedback WHERE session_id = ? ORDER BY at, id", (session_id,)
            ).fetchall()
        return _decode(rows, _feedback_from_row, "feedback")

    def feedback_for_profile(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """A profile's feedback, newest first (same shape as `feedback_for_session`)."""
        if limit < 0:
            raise InvalidInput("limit must be 0 or more")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM feedback WHERE profile = ? ORDER BY at DESC, id DESC LIMIT ?",
                (name, limit),
            ).fetchall()
        return _decode(rows, _feedback_from_row, "feedback")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
