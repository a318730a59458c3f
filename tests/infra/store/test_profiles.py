"""Profiles: JSON by name, created_at kept across a replace."""

from __future__ import annotations

from ambiance.infra.store import Store
from tests.infra.store.helpers import T0


def test_profiles_round_trip(store: Store) -> None:
    sam = {"name": "sam", "pressure": "firm", "avoid": ["neck"]}
    store.profiles.put("sam", sam, at=T0)
    store.profiles.put("alex", {"name": "alex", "pressure": "soft"}, at=T0 + 1)
    assert store.profiles.get("sam") == sam
    assert store.profiles.get("nobody") is None
    assert [p["name"] for p in store.profiles.all()] == ["alex", "sam"]

    firmer = {**sam, "pressure": "medium", "sessions": 1}
    store.profiles.put("sam", firmer, at=T0 + 50)
    assert store.profiles.get("sam") == firmer
    assert store.profiles.times("sam") == (T0, T0 + 50)  # created_at kept
    assert store.profiles.times("nobody") is None

    assert store.profiles.delete("sam") is True
    assert store.profiles.delete("sam") is False
    assert store.profiles.get("sam") is None
    assert store.profiles.all() == [{"name": "alex", "pressure": "soft"}]
