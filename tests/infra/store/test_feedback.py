"""Feedback: once per session, kept under the session and its profile, kept when the
profile goes; the v5 migration keeps the first of the duplicates stored before."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ambiance.infra.store import MIGRATIONS, AlreadyGiven, Store
from tests.infra.store.helpers import T0, raw, record


def test_feedback_round_trip(store: Store) -> None:
    store.sessions.save(record("s1", profile="sam"))
    store.sessions.save(record("s2", profile="sam"))
    store.sessions.save(record("s3", profile="sam"))
    store.profiles.put("sam", {"name": "sam"})
    ids = [
        store.feedback.add("s1", "sam", {"rating": 4, "stages": {"petrissage": "firmer"}}, T0),
        store.feedback.add("s2", "sam", {"rating": 5}, T0 + 100),
        store.feedback.add("s3", "sam", {"rating": 3}, T0 + 50),
    ]
    assert len(set(ids)) == 3

    assert store.feedback.for_session("s1") == [
        {
            "id": ids[0],
            "session_id": "s1",
            "profile": "sam",
            "at": T0,
            "data": {"rating": 4, "stages": {"petrissage": "firmer"}},
        },
    ]
    assert store.feedback.given("s2") == store.feedback.for_session("s2")[0]
    assert [f["data"].get("rating") for f in store.feedback.for_profile("sam")] == [5, 3, 4]
    assert [f["id"] for f in store.feedback.for_profile("sam", limit=2)] == [ids[1], ids[2]]
    assert store.feedback.for_profile("alex") == []

    # Deleting a profile keeps what it said (history, not preferences).
    store.profiles.delete("sam")
    assert len(store.feedback.for_profile("sam")) == 3


def test_a_second_feedback_on_a_session_is_refused_naming_the_first(store: Store) -> None:
    store.sessions.save(record("s1", profile="sam"))
    store.profiles.put("sam", {"name": "sam", "sessions": 0})
    first = store.feedback.add("s1", "sam", {"rating": 4}, T0, learned={"name": "sam", "x": 1})
    assert store.profiles.get("sam") == {"name": "sam", "x": 1}

    with pytest.raises(AlreadyGiven) as caught:
        store.feedback.add("s1", "sam", {"rating": 1}, T0 + 5, learned={"name": "sam", "x": 2})
    error = caught.value
    assert error.code == "feedback_already_given"
    assert error.detail == {"session": "s1", "feedback": {"id": first, "at": T0, "by": "sam"}}
    assert f"feedback {first}" in error.message
    assert "2027-01-15T08:00:00+00:00" in error.message  # T0, when the first was given
    # Nothing of the second is kept, and the profile did not learn it.
    assert [f["data"] for f in store.feedback.for_session("s1")] == [{"rating": 4}]
    assert store.profiles.get("sam") == {"name": "sam", "x": 1}


def test_a_session_without_a_profile_takes_one_feedback_too(store: Store) -> None:
    store.sessions.save(record("s1"))
    store.feedback.add("s1", None, {"rating": 4}, T0)
    with pytest.raises(AlreadyGiven, match="already given at"):
        store.feedback.add("s1", None, {"rating": 2}, T0 + 1)


def test_learning_never_brings_back_a_deleted_profile(store: Store) -> None:
    store.sessions.save(record("s1", profile="sam"))
    store.feedback.add("s1", "sam", {"rating": 4}, T0, learned={"name": "sam"})
    assert store.profiles.get("sam") is None
    assert len(store.feedback.for_session("s1")) == 1


def test_two_connections_at_once_keep_one_feedback(db: Path) -> None:
    """The database itself refuses the second, not a check in this process: two stores
    (two connections, as two processes would have) send at the same moment."""
    with Store(db) as one, Store(db) as two:
        one.sessions.save(record("s1", profile="sam"))
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def send(store: Store, rating: int) -> None:
            barrier.wait()
            try:
                outcomes.append(store.feedback.add("s1", "sam", {"rating": rating}, T0 + rating))
            except AlreadyGiven as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=send, args=(s, n)) for n, s in enumerate((one, two))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        kept = [o for o in outcomes if isinstance(o, int)]
        refused = [o for o in outcomes if isinstance(o, AlreadyGiven)]
        assert len(kept) == 1 and len(refused) == 1, outcomes
        assert refused[0].first["id"] == kept[0]
        assert [f["id"] for f in two.feedback.for_session("s1")] == kept


def make_v4_with_duplicates(db: Path) -> None:
    """A version 4 database where one session got feedback three times (the old bug)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    for script in MIGRATIONS[:4]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    for session, profile in (("twice", "sam"), ("once", None)):
        conn.execute(
            "INSERT INTO sessions (id, room, routine, profile, status, stage_index,"
            " started_at, stage_started_at, updated_at)"
            " VALUES (?, 'bedroom', 'classic', ?, 'finished', 2, ?, ?, ?)",
            (session, profile, T0, T0, T0),
        )
        conn.execute(
            "INSERT INTO session_routines VALUES (?, ?)",
            (session, '{"routine":{"name":"classic","stages":[]}}'),
        )
    rows = [
        ("twice", "sam", '{"rating":5}', T0 + 20),  # the first given, though its clock is later
        ("twice", "sam", '{"rating":4,"notes":"tight shoulders"}', T0 + 10),
        ("once", None, '{"rating":3}', T0 + 30),
        ("twice", "sam", '{"rating":1}', T0 + 40),
    ]
    conn.executemany(
        "INSERT INTO feedback (session_id, profile, data, at) VALUES (?, ?, ?, ?)", rows
    )
    conn.commit()
    conn.close()


def test_the_v5_migration_keeps_the_first_and_sets_the_others_aside(db: Path) -> None:
    make_v4_with_duplicates(db)
    with Store(db) as store:
        assert [f["data"] for f in store.feedback.for_session("twice")] == [{"rating": 5}]
        assert [f["data"] for f in store.feedback.for_session("once")] == [{"rating": 3}]
        # The others were acknowledged once: kept aside, not lost.
        assert [f["data"] for f in store.feedback.set_aside("twice")] == [
            {"rating": 4, "notes": "tight shoulders"},
            {"rating": 1},
        ]
        assert store.feedback.set_aside("once") == []
        with pytest.raises(AlreadyGiven):
            store.feedback.add("twice", "sam", {"rating": 2}, T0 + 50)
        # Sessions from before v5 have no record of the stages reached, nor a turn.
        old = store.sessions.get("twice")
        assert old is not None and (old.reached, old.follows) == (None, None)
    reason = raw(db).execute("SELECT DISTINCT reason FROM feedback_set_aside").fetchall()
    assert [r[0] for r in reason] == ["a second feedback on its session"]
