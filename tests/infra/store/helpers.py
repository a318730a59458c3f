"""Rows to store, and a plain connection beside the store to look at or spoil them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ambiance.infra.store import SessionRecord

T0 = 1_800_000_000.0


def record(id: str, **changes: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "id": id,
        "room": "bedroom",
        "routine": "classic",
        "routine_data": {"routine": {"name": "classic", "stages": [{"name": "prepare"}]}},
        "profile": None,
        "status": "finished",
        "index": 0,
        "started_at": T0,
        "stage_started_at": T0,
        "deadline": None,
        "paused_remaining": None,
        "ended_at": T0 + 60,
        "updated_at": T0 + 60,
    }
    fields.update(changes)
    return SessionRecord(**fields)


def raw(db: Path) -> sqlite3.Connection:
    """A plain connection beside the store, to look at or spoil rows."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn
