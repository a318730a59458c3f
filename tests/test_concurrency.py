"""Writes from the REST API and from MQTT at the same time: none is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.infra.clock import FakeClock
from ambiance.infra.store import Store
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import EventLog, make_library
from tests.mosquitto import Mosquitto, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

ROOMS = ["one", "two", "three"]
CYCLES = 5  # start, next, next, pause, stop: five commands each


async def test_api_and_mqtt_writing_at_once_lose_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={name: RoomConfig(routine="timed") for name in ROOMS},
    )
    core = Ambiance(settings, clock=FakeClock(), library=make_library())
    log = EventLog(core.bus)
    async with core:
        assert await core.mqtt.wait_ready(5)
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def api_writer(i: int) -> None:
                r = await client.post("/api/v1/profiles", json={"name": f"p{i}"})
                assert r.status_code == 201, r.text
                r = await client.patch(f"/api/v1/profiles/p{i}", json={"notes": f"n{i}"})
                assert r.status_code == 200, r.text

            def mqtt_writer(sub: Subscriber) -> None:
                for _ in range(CYCLES):
                    for action in ("start", "next", "next", "pause", "stop"):
                        for room in ROOMS:
                            sub.publish(f"ambiance/{room}/cmd", action)

            with Subscriber(mosquitto, "ambiance/+/error") as sub:
                await asyncio.gather(
                    asyncio.to_thread(mqtt_writer, sub),
                    *(api_writer(i) for i in range(60)),
                )
                # Each room's last command ends its last session: wait for those events.
                for room in ROOMS:
                    await log.wait_for(
                        lambda e, room=room: (
                            e.kind == "session.ended"  # type: ignore[misc]
                            and e.room == room
                            and sum(
                                1
                                for x in log.events
                                if x.kind == "session.ended" and x.room == room
                            )
                            == CYCLES
                        )
                    )
                assert sub.matching("ambiance/+/error") == []
                with Store.in_dir(tmp_path) as store:
                    for room in ROOMS:
                        sessions = store.sessions.history(room=room, limit=100)
                        assert (
                            sum(len(store.sessions.commands(s.id)) for s in sessions) == CYCLES * 5
                        )

        # A second reader (another connection) sees every write.
        with Store.in_dir(tmp_path) as store:
            notes = {p["name"]: p["notes"] for p in store.profiles.all()}
            assert notes == {f"p{i}": f"n{i}" for i in range(60)}
            for room in ROOMS:
                sessions = store.sessions.history(room=room, limit=100)
                assert len(sessions) == CYCLES
                assert {s.status for s in sessions} == {"stopped"}
