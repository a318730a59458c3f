"""Sessions: their records (the live ones a restart resumes, the others the history) and
the commands given in them.

An unreadable *active* session would keep its room blocked forever (one active session per
room), so `active()` also marks it stopped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, cast

from ambiance.core.status import ACTIVE, Status
from ambiance.errors import Conflict, InvalidInput
from ambiance.infra.store.database import Database
from ambiance.infra.store.rows import decode, dumps, loads_dict, optional_float

log = logging.getLogger(__name__)

STATUSES: Final = tuple(Status)  # the schema's CHECK lists the same four


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
    status: Status
    index: int
    started_at: float
    stage_started_at: float
    deadline: float | None
    paused_remaining: float | None
    ended_at: float | None
    updated_at: float
    # The stages it got to, in order; None for a session stored before schema v5.
    reached: list[str] | None = None
    follows: str | None = None  # the session it took turns after
    # Which routine of the session this is: a session changes its routine only while
    # getting ready (today's answers shape it anew), and each change counts one. Not a
    # column: it tells the store to write the routine again.
    routine_version: int = 0
    # Its pressure check-ins (engine.Session.record()); None for a session before v6.
    checkins: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# A session with its routine (from its own table, schema v3); a session row whose routine
# row is missing reads as NULL there, and is then skipped as unreadable.
_SELECT_SESSIONS = (
    "SELECT s.*, r.routine_data FROM sessions AS s"
    " LEFT JOIN session_routines AS r ON r.session_id = s.id"
)


def _reached(text: str | None) -> list[str] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError("reached is not a list of stage names")
    return cast(list[str], value)


def _session_from_row(row: sqlite3.Row) -> SessionRecord:
    """Build a record, checking types: a row edited by hand fails here, not in the engine."""
    try:
        status = Status(row["status"])
    except ValueError:
        raise ValueError(f"unknown status {row['status']!r}") from None
    profile = row["profile"]
    follows = row["follows"]
    return SessionRecord(
        id=str(row["id"]),
        room=str(row["room"]),
        routine=str(row["routine"]),
        routine_data=loads_dict(row["routine_data"]),
        profile=None if profile is None else str(profile),
        status=status,
        index=int(row["stage_index"]),
        started_at=float(row["started_at"]),
        stage_started_at=float(row["stage_started_at"]),
        deadline=optional_float(row["deadline"]),
        paused_remaining=optional_float(row["paused_remaining"]),
        ended_at=optional_float(row["ended_at"]),
        updated_at=float(row["updated_at"]),
        reached=_reached(row["reached"]),
        follows=None if follows is None else str(follows),
        checkins=None if row["checkins"] is None else loads_dict(row["checkins"]),
    )


def _command_from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "session_id": str(row["session_id"]),
        "at": float(row["at"]),
        "action": str(row["action"]),
        "args": loads_dict(row["args"]),
    }


_NEWER_ROUTINE = "DO UPDATE SET routine_data = excluded.routine_data"


class Sessions:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Active sessions whose routine row is known to be committed, and which version of
        # it: their saves skip dumping the routine again (5-10 KB of JSON) until it changes.
        # Only ever set after a commit; a dict's get, set and pop are atomic, so the
        # threads need no lock for it.
        self._routine_saved: dict[str, int] = {}

    # --- records -----------------------------------------------------------------------

    def save(self, record: SessionRecord) -> None:
        """Insert or update a session (by id), now.

        At most one session per room may be running or paused. Saving a second active
        session for a room raises `Conflict` naming the one there and changes nothing: end
        (save) the old session before saving the new one.
        """
        if record.status not in STATUSES:
            raise InvalidInput(f"unknown session status {record.status!r}")
        try:
            with self.db.write() as conn:
                self._upsert(conn, record)
        except sqlite3.IntegrityError as exc:
            # ON CONFLICT (id) handles the primary key, so a UNIQUE failure left is the
            # one-active-session-per-room index.
            if exc.sqlite_errorcode != sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                raise
            raise self._conflict(record) from exc
        self._saved(record)

    def save_soon(self, session_id: str, build: Callable[[], SessionRecord]) -> None:
        """Save a session at the end of this turn of the running event loop, with the other
        writes held for then (writebehind.py); `build()` makes the record at that moment, so
        several changes in one turn cost one write. Without a running loop: RuntimeError.

        The session keeps its place among the held writes: it is written before the rows
        that refer to it (commands). A save that fails then cannot reach the caller: it is
        logged, and a later change saves the session again."""

        def write(conn: sqlite3.Connection) -> Callable[[], None]:
            record = build()
            self._upsert(conn, record)
            return lambda: self._saved(record)

        self.db.defer(session_id, f"session {session_id}", write)

    def get(self, session_id: str) -> SessionRecord | None:
        with self.db.read() as conn:
            rows = conn.execute(f"{_SELECT_SESSIONS} WHERE s.id = ?", (session_id,)).fetchall()
        found = decode(rows, _session_from_row, "session")
        return found[0] if found else None

    def active(self) -> list[SessionRecord]:
        """The running and paused sessions (at most one per room), oldest first.

        An unreadable one cannot be resumed, and would keep its room blocked: it is logged
        and marked stopped (at its last update), which frees the room.
        """
        with self.db.write() as conn:
            rows = conn.execute(
                f"{_SELECT_SESSIONS} WHERE s.status IN (?, ?) ORDER BY s.started_at, s.rowid",
                ACTIVE,
            ).fetchall()
            records = decode(rows, _session_from_row, "session")
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
        with self.db.read() as conn:
            rows = conn.execute(sql, (*params, limit, offset)).fetchall()
        return decode(rows, _session_from_row, "session")

    def followers(self, session_ids: list[str]) -> dict[str, str]:
        """The session that took turns after each of these, by id (the newest, if several)."""
        found: dict[str, str] = {}
        for start in range(0, len(session_ids), 500):  # within SQLite's parameter limit
            chunk = session_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            with self.db.read() as conn:
                rows = conn.execute(
                    f"SELECT id, follows FROM sessions WHERE follows IN ({marks})"
                    " ORDER BY started_at, rowid",
                    chunk,
                ).fetchall()
            found.update((str(row["follows"]), str(row["id"])) for row in rows)
        return found

    def _upsert(self, conn: sqlite3.Connection, record: SessionRecord) -> None:
        conn.execute(
            """
            INSERT INTO sessions (id, room, routine, profile, status,
                stage_index, started_at, stage_started_at, deadline,
                paused_remaining, ended_at, updated_at, reached, follows, checkins)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                room = excluded.room, routine = excluded.routine,
                profile = excluded.profile,
                status = excluded.status, stage_index = excluded.stage_index,
                started_at = excluded.started_at,
                stage_started_at = excluded.stage_started_at,
                deadline = excluded.deadline,
                paused_remaining = excluded.paused_remaining,
                ended_at = excluded.ended_at, updated_at = excluded.updated_at,
                reached = excluded.reached, follows = excluded.follows,
                checkins = excluded.checkins
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
                None if record.reached is None else dumps(record.reached),
                record.follows,
                None if record.checkins is None else dumps(record.checkins),
            ),
        )
        if self._routine_saved.get(record.id) != record.routine_version:
            # Written with the session's first save; a session keeps its routine, unless
            # it changed it (today's answers while getting ready: a later version).
            keep = "DO NOTHING" if record.routine_version == 0 else _NEWER_ROUTINE
            conn.execute(
                "INSERT INTO session_routines (session_id, routine_data) VALUES (?, ?)"
                f" ON CONFLICT (session_id) {keep}",
                (record.id, dumps(record.routine_data)),
            )

    def _saved(self, record: SessionRecord) -> None:
        """Note, once committed, that an active session's routine is in the store."""
        if record.active:
            self._routine_saved[record.id] = record.routine_version
        else:
            self._routine_saved.pop(record.id, None)

    def _conflict(self, record: SessionRecord) -> Conflict:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT id, status FROM sessions WHERE room = ? AND status IN (?, ?)",
                (record.room, *ACTIVE),
            ).fetchone()
        other = f" ({row['status']} session {row['id']})" if row is not None else ""
        return Conflict(
            f"room {record.room!r} already has an active session{other}; "
            f"cannot save session {record.id} as {record.status}"
        )

    # --- the commands given ------------------------------------------------------------

    def log_command(self, session_id: str, at: float, action: str, args: dict[str, Any]) -> int:
        """Record a command given in a session (which must be saved) now; returns its id."""
        with self.db.write() as conn:
            return self._insert_command(conn, session_id, at, action, args)

    def log_command_soon(
        self, session_id: str, at: float, action: str, args: dict[str, Any]
    ) -> None:
        """`log_command` at the end of this turn of the running loop (see `save_soon`)."""

        def write(conn: sqlite3.Connection) -> None:
            self._insert_command(conn, session_id, at, action, args)

        self.db.defer(None, "a command", write)

    def commands(self, session_id: str) -> list[dict[str, Any]]:
        """`{"id", "session_id", "at", "action", "args"}` per command, in the order given."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM commands WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        return decode(rows, _command_from_row, "command")

    def _insert_command(
        self, conn: sqlite3.Connection, session_id: str, at: float, action: str, args: Any
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO commands (session_id, at, action, args) VALUES (?, ?, ?, ?)",
            (session_id, at, action, dumps(args)),
        )
        return int(cast(int, cursor.lastrowid))
