"""Feedback: per session and per profile, kept when the profile goes."""

from __future__ import annotations

from ambiance.infra.store import Store
from tests.infra.store.helpers import T0, record


def test_feedback_round_trip(store: Store) -> None:
    store.sessions.save(record("s1", profile="sam"))
    store.sessions.save(record("s2", profile="sam"))
    store.profiles.put("sam", {"name": "sam"})
    ids = [
        store.feedback.add("s1", "sam", {"rating": 4, "stages": {"petrissage": "firmer"}}, T0),
        store.feedback.add("s1", None, {"notes": "lovely"}, T0 + 1),
        store.feedback.add("s2", "sam", {"rating": 5}, T0 + 100),
        store.feedback.add("s2", "sam", {"rating": 3}, T0 + 50),
    ]
    assert len(set(ids)) == 4

    assert store.feedback.for_session("s1") == [
        {
            "id": ids[0],
            "session_id": "s1",
            "profile": "sam",
            "at": T0,
            "data": {"rating": 4, "stages": {"petrissage": "firmer"}},
        },
        {
            "id": ids[1],
            "session_id": "s1",
            "profile": None,
            "at": T0 + 1,
            "data": {"notes": "lovely"},
        },
    ]
    assert [f["data"].get("rating") for f in store.feedback.for_profile("sam")] == [5, 3, 4]
    assert [f["id"] for f in store.feedback.for_profile("sam", limit=2)] == [ids[2], ids[3]]
    assert store.feedback.for_profile("alex") == []

    # Deleting a profile keeps what it said (history, not preferences).
    store.profiles.delete("sam")
    assert len(store.feedback.for_profile("sam")) == 3
