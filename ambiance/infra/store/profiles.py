"""Profiles: each person's preferences, as JSON by name (`core/people.py` validates them)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from ambiance.infra.store.database import Database
from ambiance.infra.store.rows import decode, dumps, loads_dict


class Profiles:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, name: str, data: dict[str, Any], *, at: float | None = None) -> None:
        """Create or replace a profile; `created_at` survives a replace."""
        now = time.time() if at is None else at
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO profiles (name, data, created_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET"
                " data = excluded.data, updated_at = excluded.updated_at",
                (name, dumps(data), now, now),
            )

    def change_soon(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None], *, at: float
    ) -> None:
        """Change a profile at the end of this turn of the running loop, with the writes
        held for then, in their transaction (writebehind.py): `change(data)` gets the
        profile's data as it is then and returns the new data (None: no change). A profile
        deleted meanwhile stays deleted; a `change` that raises is logged, and changes
        nothing."""

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT data FROM profiles WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            changed = change(loads_dict(row["data"]))
            if changed is not None:
                conn.execute(
                    "UPDATE profiles SET data = ?, updated_at = ? WHERE name = ?",
                    (dumps(changed), at, name),
                )
            return None

        self.db.defer(None, f"profile {name!r}", write)

    def get(self, name: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name, data FROM profiles WHERE name = ?", (name,)
            ).fetchall()
        found = decode(rows, lambda row: loads_dict(row["data"]), "profile")
        return found[0] if found else None

    def times(self, name: str) -> tuple[float, float] | None:
        """`(created_at, updated_at)` of a profile, None if there is none."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT created_at, updated_at FROM profiles WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else (float(row["created_at"]), float(row["updated_at"]))

    def all(self) -> list[dict[str, Any]]:
        """Every profile's data, by name."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT name, data FROM profiles ORDER BY name").fetchall()
        return decode(rows, lambda row: loads_dict(row["data"]), "profile")

    def delete(self, name: str) -> bool:
        """Delete a profile; False if there was none. Its feedback and history stay."""
        with self.db.write() as conn:
            return conn.execute("DELETE FROM profiles WHERE name = ?", (name,)).rowcount > 0
