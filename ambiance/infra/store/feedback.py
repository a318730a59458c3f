"""Feedback: what the receiver said after a session, kept under the session and its profile.

A session takes one feedback (a session is for one receiver, its profile): the database
holds that with a unique index (schema v5), so two phones sending at the same moment, or
two processes on one data dir, cannot both get in. The second is `AlreadyGiven`, naming
the first.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, cast

from ambiance.errors import Conflict, InvalidInput
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


class AlreadyGiven(Conflict):
    """A session's feedback was given already; `first` is that one (id, at, profile)."""

    code = "feedback_already_given"

    def __init__(self, session_id: str, first: dict[str, Any]) -> None:
        when = datetime.fromtimestamp(first["at"], UTC).isoformat(timespec="seconds")
        whose = f" for {first['profile']!r}" if first["profile"] is not None else ""
        super().__init__(
            f"feedback on session {session_id} was already given{whose} at {when} "
            f"(feedback {first['id']}); a session's feedback is taken, and learned, once",
            detail={
                "session": session_id,
                "feedback": {"id": first["id"], "at": first["at"], "by": first["profile"]},
            },
        )
        self.first = first


class FeedbackLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        session_id: str,
        profile: str | None,
        data: dict[str, Any],
        at: float,
        *,
        learned: dict[str, Any] | None = None,
    ) -> int:
        """Keep the feedback on a (saved) session; returns its id.

        `learned`: the profile's data as it learned from this feedback, written in the same
        transaction, so a feedback refused as a second one changes no profile. Raises
        `AlreadyGiven` when the session has its feedback already.
        """
        try:
            with self.db.write() as conn:
                cursor = conn.execute(
                    "INSERT INTO feedback (session_id, profile, data, at) VALUES (?, ?, ?, ?)",
                    (session_id, profile, dumps(data), at),
                )
                if learned is not None and profile is not None:
                    # An update, never an insert: a profile deleted meanwhile stays deleted.
                    conn.execute(
                        "UPDATE profiles SET data = ?, updated_at = ? WHERE name = ?",
                        (dumps(learned), at, profile),
                    )
                return int(cast(int, cursor.lastrowid))
        except sqlite3.IntegrityError as exc:
            # A missing session (a foreign key) is a bug of the caller and stays one.
            if exc.sqlite_errorcode != sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                raise
            first = self.given(session_id)
            if first is None:  # the first row is unreadable: still, it is there
                first = {"id": None, "at": at, "profile": profile}
            raise AlreadyGiven(session_id, first) from None

    def given(self, session_id: str) -> dict[str, Any] | None:
        """The session's feedback (`{"id", "session_id", "profile", "at", "data"}`), if any."""
        found = self.for_session(session_id)
        return found[0] if found else None

    def for_session(self, session_id: str) -> list[dict[str, Any]]:
        """`{"id", "session_id", "profile", "at", "data"}` per feedback: at most one since
        schema v5 (a list, as the history shows it)."""
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

    def set_aside(self, session_id: str) -> list[dict[str, Any]]:
        """Second feedback on this session found when migrating to schema v5, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM feedback_set_aside WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        return decode(rows, _feedback_from_row, "set-aside feedback")
