"""Rows that cannot be read are logged and skipped, in every repository."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ambiance.infra.store import Store
from tests.infra.store.helpers import T0, raw, record


def test_corrupt_json_rows_are_logged_and_skipped(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.sessions.save(record("good", started_at=T0 + 1))
    store.sessions.save(record("bad", started_at=T0 + 2))
    store.sessions.save(record("list", started_at=T0 + 3))
    store.sessions.save(record("gone", started_at=T0 + 4))  # its routine row goes missing
    store.snapshots.save("good", "lights", {"on": True})
    store.snapshots.save("good", "music", {"volume": 1})
    store.sessions.log_command("good", T0, "next", {})
    store.sessions.log_command("good", T0 + 1, "pause", {})
    store.feedback.add("good", "sam", {"rating": 5}, T0)
    store.feedback.add("list", "sam", {"rating": 1}, T0 + 1)
    store.profiles.put("sam", {"name": "sam"})
    store.profiles.put("zed", {"name": "zed"})
    store.dnd.save("bedroom", "anna", {"state": "on"})
    store.dnd.save("bedroom", "ben", {"state": "on"})

    conn = raw(db)
    conn.execute("UPDATE session_routines SET routine_data = '{not json' WHERE session_id = 'bad'")
    conn.execute("DELETE FROM session_routines WHERE session_id = 'gone'")
    conn.execute("UPDATE session_routines SET routine_data = '[1, 2]' WHERE session_id = 'list'")
    conn.execute("UPDATE snapshots SET data = 'nope' WHERE device = 'music'")
    conn.execute("UPDATE commands SET args = '{' WHERE action = 'pause'")
    conn.execute("UPDATE feedback SET data = '' WHERE at = ?", (T0 + 1,))
    conn.execute("UPDATE profiles SET data = '{\"name\":' WHERE name = 'zed'")
    conn.execute("UPDATE dnd SET payload = 'null' WHERE phone = 'ben'")
    conn.close()

    with caplog.at_level(logging.ERROR, logger="ambiance.infra.store"):
        assert [s.id for s in store.sessions.history()] == ["good"]
        assert store.sessions.get("bad") is None
        assert store.sessions.get("good") is not None
        assert store.snapshots.for_session("good") == {"lights": {"on": True}}
        assert [c["action"] for c in store.sessions.commands("good")] == ["next"]
        assert [f["data"] for f in store.feedback.for_session("good")] == [{"rating": 5}]
        assert [f["data"] for f in store.feedback.for_profile("sam")] == [{"rating": 5}]
        assert store.profiles.get("zed") is None
        assert store.profiles.all() == [{"name": "sam"}]
        assert store.dnd.states("bedroom") == {"anna": {"state": "on"}}
    logged = caplog.text
    rows = ("id='bad'", "id='list'", "id='gone'", "snapshot", "command", "feedback", "'zed'")
    for needle in (*rows, "dnd"):
        assert needle in logged
