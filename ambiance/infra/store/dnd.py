"""DND states: the last do-not-disturb message sent to each phone of a room.

To know after a restart what the phones were told, and to switch them off again.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ambiance.infra.store.database import Database
from ambiance.infra.store.rows import decode, dumps, loads_dict


class DndStates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(
        self, room: str, phone: str, payload: dict[str, Any], *, at: float | None = None
    ) -> None:
        """Remember, now, the do-not-disturb message last sent to a phone of a room."""
        with self.db.write() as conn:
            self._upsert(conn, room, phone, payload, at)

    def save_soon(
        self, room: str, phone: str, payload: dict[str, Any], *, at: float | None = None
    ) -> None:
        """`save` at the end of this turn of the running loop (`Sessions.save_soon`), in one
        transaction with the session's save."""

        def write(conn: sqlite3.Connection) -> None:
            self._upsert(conn, room, phone, payload, at)

        self.db.defer(None, f"the DND state of {room}/{phone}", write)

    def states(self, room: str) -> dict[str, dict[str, Any]]:
        """Phone -> the payload last sent to it, for one room."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT room, phone, payload FROM dnd WHERE room = ? ORDER BY phone", (room,)
            ).fetchall()
        pairs = decode(rows, lambda row: (str(row["phone"]), loads_dict(row["payload"])), "dnd")
        return dict(pairs)

    def _upsert(
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
            (room, phone, dumps(payload), time.time() if at is None else at),
        )
