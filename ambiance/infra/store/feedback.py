"""Feedback: what the receiver said after a session, kept under the session and its profile."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from ambiance.errors import InvalidInput
from ambiance.infra.store.database import Database
from ambiance.infra.store.rows import decode, dumps, loads_dict


def _feedback_from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "session_id": str(row["session_id"]),
        "profile": row["profile"],
        "at": float(row["at"]),
        "data": loads_dict(row["data"]),
    }


class FeedbackLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, session_id: str, profile: str | None, data: dict[str, Any], at: float) -> int:
        """Keep one piece of feedback on a (saved) session; returns its id."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (session_id, profile, data, at) VALUES (?, ?, ?, ?)",
                (session_id, profile, dumps(data), at),
            )
            return int(cast(int, cursor.lastrowid))

    def for_session(self, session_id: str) -> list[dict[str, Any]]:
        """`{"id", "session_id", "profile", "at", "data"}` per feedback, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM feedback WHERE session_id = ? ORDER BY at, id", (session_id,)
            ).fetchall()
        return decode(rows, _feedback_from_row, "feedback")

    def for_profile(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """A profile's feedback, newest first (same shape as `for_session`)."""
        if limit < 0:
            raise InvalidInput("limit must be 0 or more")
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM feedback WHERE profile = ? ORDER BY at DESC, id DESC LIMIT ?",
                (name, limit),
            ).fetchall()
        return decode(rows, _feedback_from_row, "feedback")
