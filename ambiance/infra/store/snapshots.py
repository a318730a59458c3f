"""Snapshots: what each device looked like before a session changed it, per session.

So the room can be put back even after a crash mid-session. A snapshot counts as not yet
put back (`restored_at` is NULL, schema v4) until the device is back as it says
(`mark_restored`); a restore cut short is done at the next start (`pending_restores`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ambiance.core.status import ENDED
from ambiance.infra.store.database import Database
from ambiance.infra.store.rows import decode, dumps, loads_dict


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
        value = loads_dict(row["routine_data"]).get("routine", {}).get("restore_transition")
        transition = None if value is None else float(value)
    return PendingRestore(
        room=str(row["room"]),
        session_id=str(row["session_id"]),
        device=str(row["device"]),
        data=json.loads(row["data"]),
        transition=transition,
    )


class Snapshots:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, session_id: str, device: str, data: Any) -> None:
        """Keep a device's snapshot for a (saved) session; a new one replaces the old.
        It counts as not yet put back until `mark_restored`."""
        with self.db.write() as conn:
            self._upsert(conn, session_id, device, dumps(data))

    def save_soon(self, session_id: str, device: str, data: Any) -> None:
        """`save` at the end of this turn of the running loop (writebehind.py): for a
        snapshot that could not be saved now, kept until the disk takes it."""
        text = dumps(data)

        def write(conn: sqlite3.Connection) -> None:
            self._upsert(conn, session_id, device, text)

        self.db.defer(f"snapshot {session_id} {device}", f"the {device} snapshot", write)

    def mark_restored(self, room: str, device: str, *, at: float | None = None) -> None:
        """Note that a room's device is back as its snapshots say (each not yet noted)."""
        with self.db.write() as conn:
            self._mark(conn, room, device, time.time() if at is None else at)

    def mark_restored_soon(self, room: str, device: str, *, at: float | None = None) -> None:
        """`mark_restored` at the end of this turn of the running loop (see `save_soon`)."""
        when = time.time() if at is None else at

        def write(conn: sqlite3.Connection) -> None:
            self._mark(conn, room, device, when)

        self.db.defer(None, f"the {device} of {room} put back", write)

    def _upsert(self, conn: sqlite3.Connection, session_id: str, device: str, data: str) -> None:
        conn.execute(
            "INSERT INTO snapshots (session_id, device, data) VALUES (?, ?, ?)"
            " ON CONFLICT (session_id, device) DO UPDATE SET"
            " data = excluded.data, restored_at = NULL",
            (session_id, device, data),
        )

    def _mark(self, conn: sqlite3.Connection, room: str, device: str, at: float) -> None:
        conn.execute(
            "UPDATE snapshots SET restored_at = ? WHERE restored_at IS NULL AND device = ?"
            " AND session_id IN (SELECT id FROM sessions WHERE room = ?)",
            (at, device, room),
        )

    def pending_restores(self) -> list[PendingRestore]:
        """The snapshots of ended sessions whose device was never put back, oldest first.

        A restore is cut short by a crash, or by a stop while the device was away; the
        service does it at its next start."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT s.room, s.id AS session_id, n.device, n.data, r.routine_data"
                " FROM snapshots n JOIN sessions s ON s.id = n.session_id"
                " LEFT JOIN session_routines r ON r.session_id = s.id"
                " WHERE n.restored_at IS NULL AND s.status IN (?, ?)"
                " ORDER BY s.started_at, n.device",
                ENDED,
            ).fetchall()
        return decode(rows, _pending_restore_from_row, "snapshot")

    def for_session(self, session_id: str) -> dict[str, Any]:
        """Device name -> snapshot for the session (an unreadable one is left out)."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT session_id, device, data FROM snapshots WHERE session_id = ?"
                " ORDER BY device",
                (session_id,),
            ).fetchall()
        pairs = decode(rows, lambda row: (str(row["device"]), json.loads(row["data"])), "snapshot")
        return dict(pairs)
