"""Snapshots: per session, any JSON, pending until put back."""

from __future__ import annotations

import dataclasses

from ambiance.infra.store import Store
from tests.infra.store.helpers import T0, record


def test_a_snapshot_waits_to_be_put_back_until_marked_restored(store: Store) -> None:
    routine = {"routine": {"name": "classic", "restore_transition": 4, "stages": []}}
    running = record("s1", status="running", ended_at=None, routine_data=routine)
    store.sessions.save(running)
    store.snapshots.save("s1", "lights", {"1": {"on": True}})
    store.snapshots.save("s1", "music", None)
    assert store.snapshots.pending_restores() == []  # a running session keeps its own for its end
    store.sessions.save(dataclasses.replace(running, status="stopped", ended_at=T0 + 60))
    pending = store.snapshots.pending_restores()
    assert [(p.room, p.session_id, p.device, p.data, p.transition) for p in pending] == [
        ("bedroom", "s1", "lights", {"1": {"on": True}}, 4.0),
        ("bedroom", "s1", "music", None, 4.0),
    ]
    store.snapshots.mark_restored("lounge", "lights", at=T0 + 70)  # another room: not these
    store.snapshots.mark_restored("bedroom", "lights", at=T0 + 70)
    assert [p.device for p in store.snapshots.pending_restores()] == ["music"]
    store.snapshots.save("s1", "lights", {"1": {"on": False}})  # a new one: pending again
    assert [p.device for p in store.snapshots.pending_restores()] == ["lights", "music"]


def test_snapshots_round_trip_any_json(store: Store) -> None:
    store.sessions.save(record("s1"))
    store.sessions.save(record("s2"))
    lights = {"1": {"on": True, "bri": 200, "xy": [0.3, 0.4]}, "2": {"on": False}}
    store.snapshots.save("s1", "lights", lights)
    store.snapshots.save("s1", "distractions", ["plug-1", "hue:7"])
    store.snapshots.save("s1", "music", None)
    store.snapshots.save("s2", "lights", {"other": 1})
    assert store.snapshots.for_session("s1") == {
        "lights": lights,
        "distractions": ["plug-1", "hue:7"],
        "music": None,
    }
    store.snapshots.save("s1", "music", {"playing": "rain", "volume": 30})  # replaces
    assert store.snapshots.for_session("s1")["music"] == {"playing": "rain", "volume": 30}
    assert store.snapshots.for_session("s2") == {"lights": {"other": 1}}
    assert store.snapshots.for_session("nope") == {}
