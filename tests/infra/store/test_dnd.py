"""DND states: the last message sent to each phone, per room."""

from __future__ import annotations

from ambiance.infra.store import Store
from tests.infra.store.helpers import T0


def test_dnd_states_per_room(store: Store) -> None:
    store.dnd.save("bedroom", "anna", {"state": "on", "until": T0 + 3600}, at=T0)
    store.dnd.save("bedroom", "ben", {"state": "on"})
    store.dnd.save("lounge", "anna", {"state": "off"})
    store.dnd.save("bedroom", "anna", {"state": "off"}, at=T0 + 10)  # replaces
    assert store.dnd.states("bedroom") == {"anna": {"state": "off"}, "ben": {"state": "on"}}
    assert store.dnd.states("lounge") == {"anna": {"state": "off"}}
    assert store.dnd.states("attic") == {}
