"""Profiles: each person's preferences, as JSON by name (`core/people.py` validates them)."""

from __future__ import annotations

import time
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
