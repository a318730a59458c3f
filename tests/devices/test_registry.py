"""A new light backend plugs in from this module alone: no other file names it.

The toy backend below declares its config and factory and registers them; the settings
validate it (errors naming the field), the service builds, starts and stops it, the room
snapshots and restores through its own codec, and its view shows in REST, the retained
MQTT state and the server-sent events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from pydantic import Field

from ambiance.config import DevicesConfig, RoomConfig, Settings, load_settings
from ambiance.devices.lights.base import LightState, LightTarget, SavedLight, Snapshot
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, registry
from ambiance.errors import ConfigError, DeviceUnavailable
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import EventLog, make_library
from tests.http_server import Server
from tests.mosquitto import Mosquitto, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio


class ToyLightsConfig(BackendConfig):
    backend: Literal["toy"]
    lamps: list[str] = Field(min_length=1)
    level: int = Field(default=50, ge=0, le=100, description="Each lamp's level at start.")


@dataclass
class ToyLights:
    """Lamps in memory with a level each; it can be told to fail like a device gone away."""

    config: ToyLightsConfig
    kind: str = "toy"
    levels: dict[str, int] = field(default_factory=dict)
    started: int = 0
    stopped: int = 0
    applied: list[LightTarget] = field(default_factory=list)
    restored: list[Snapshot] = field(default_factory=list)
    dumped: int = 0
    loaded: int = 0
    failing: bool = False

    async def start(self) -> None:
        self.started += 1
        self.levels = {lamp: self.config.level for lamp in self.config.lamps}

    async def stop(self) -> None:
        self.stopped += 1

    def _check(self) -> None:
        if self.failing:
            raise DeviceUnavailable("the toy lamps are unplugged")

    async def read(self) -> list[LightState]:
        self._check()
        return [
            LightState(id=lamp, name=lamp, on=level > 0, brightness=float(level), kelvin=None)
            for lamp, level in self.levels.items()
        ]

    async def apply(self, target: LightTarget) -> None:
        self._check()
        self.applied.append(target)
        level = round(target.brightness) if target.on else 0
        self.levels = dict.fromkeys(self.levels, level)

    async def snapshot(self) -> Snapshot:
        self._check()
        return Snapshot(tuple(SavedLight(k, k, {"level": v}) for k, v in self.levels.items()))

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        self._check()
        self.restored.append(snapshot)
        for saved in snapshot.lights:
            self.levels[saved.id] = int(saved.state["level"])

    # Its own codec, unlike the other lights': the store keeps {"toy": {lamp: level}}.
    def dump_snapshot(self, snapshot: Snapshot) -> Any:
        self.dumped += 1
        return {"toy": {saved.id: saved.state["level"] for saved in snapshot.lights}}

    def load_snapshot(self, data: Any) -> Snapshot:
        self.loaded += 1
        return Snapshot(tuple(SavedLight(k, k, {"level": v}) for k, v in data["toy"].items()))


built: list[ToyLights] = []


def build(config: ToyLightsConfig, context: BuildContext) -> ToyLights:
    lights = ToyLights(config)
    built.append(lights)
    return lights


@pytest.fixture(autouse=True)
def toy() -> Iterator[None]:
    unregister = registry.register(
        Backend(slot="lights", name="toy", config=ToyLightsConfig, build=build)
    )
    built.clear()
    yield
    unregister()
    assert "toy" not in registry.of("lights")


def test_the_settings_validate_it_and_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("rooms:\n  bedroom:\n    lights: {backend: toy, lamps: [a], level: 101}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, data_dir=tmp_path)
    assert caught.value.problems == [
        f"{config}: rooms.bedroom.lights.level: Input should be less than or equal to 100"
    ]

    config.write_text("rooms:\n  bedroom:\n    lights: {backend: toy, lamps: [a], colour: red}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, data_dir=tmp_path)
    assert caught.value.problems == [
        f"{config}: rooms.bedroom.lights.colour: unknown field (check its spelling)"
    ]

    config.write_text("rooms:\n  bedroom:\n    lights: {backend: toys}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, data_dir=tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{config}: rooms.bedroom.lights: unknown backend 'toys' (known: ")
    assert "toy, " in problem and "virtual" in problem

    config.write_text("rooms:\n  bedroom:\n    lights: {backend: toy, lamps: [a, b]}\n")
    lights = load_settings(config, data_dir=tmp_path).rooms["bedroom"].lights
    assert lights == ToyLightsConfig(backend="toy", lamps=["a", "b"])


@pytest.fixture
async def core(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Ambiance]:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.05, settle_timeout=2),
        rooms={
            "bedroom": RoomConfig(
                routine="quick", lights=ToyLightsConfig(backend="toy", lamps=["left", "right"])
            )
        },
    )
    core = Ambiance(settings, clock=FakeClock(), library=make_library())
    async with core:
        assert await core.mqtt.wait_ready(5)
        yield core


async def serve(core: Ambiance) -> AsyncIterator[str]:
    config = uvicorn.Config(create_app(core), host="127.0.0.1", port=0, log_level="warning")
    server = Server(config)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.ready.wait(), 10)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await task


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def state(subscriber: Subscriber) -> dict[str, Any]:
    message = subscriber.matching("ambiance/bedroom/state")[-1]
    data: dict[str, Any] = json.loads(message.payload)
    return data


async def test_it_is_built_run_shown_and_put_back(core: Ambiance, mosquitto: Mosquitto) -> None:
    (toy,) = built
    assert toy.started == 1
    log = EventLog(core.bus)
    with Subscriber(mosquitto, "ambiance/bedroom/state") as subscriber:
        async for url in serve(core):
            async with (
                httpx.AsyncClient(base_url=url, timeout=10) as client,
                client.stream("GET", "/api/v1/events", params={"room": "bedroom"}) as stream,
            ):
                sse = frames(stream)
                first = await anext(sse)
                assert first["lights"]["backend"] == "toy"
                assert [x["name"] for x in first["lights"]["lights"]] == ["left", "right"]

                # REST: spa mode snapshots the toy through its own codec, then dims it.
                answer = await client.post("/api/v1/rooms/bedroom/spa")
                assert answer.status_code == 201
                lights = answer.json()["lights"]
                assert (lights["backend"], lights["synced"]) == ("toy", True)
                assert [x["brightness"] for x in lights["lights"]] == [40.0, 40.0]
                assert toy.dumped == 1
                saved = core.store.snapshots.for_session(core.room("bedroom").session.id)  # type: ignore[union-attr]
                assert saved == {"lights": {"toy": {"left": 50, "right": 50}}}

                # SSE: the frames carry the toy's view.
                view = await anext(sse)
                while view["session"] is None or not view["lights"]["synced"]:
                    view = await anext(sse)
                assert view["lights"]["backend"] == "toy"
                assert view["lights"]["lights"][0]["brightness"] == 40.0

                # MQTT state: the toy's health is the room's; unplugged, the room degrades.
                await subscriber.async_wait_for(
                    "ambiance/bedroom/state", predicate=lambda m: b'"running"' in m.payload
                )
                assert state(subscriber)["health"] == "ok"
                toy.failing = True
                await client.post("/api/v1/rooms/bedroom/session/next")
                await subscriber.async_wait_for(
                    "ambiance/bedroom/state", predicate=lambda m: b'"degraded"' in m.payload
                )
                body = (await client.get("/api/v1/rooms/bedroom")).json()
                (health,) = body["health"]["devices"]
                assert (health["kind"], health["available"]) == ("toy", False)
                assert health["error"] == "the toy lamps are unplugged"
                toy.failing = False
                await log.wait_for(lambda e: e.kind == "device.health" and e.data["available"])
                await subscriber.async_wait_for(
                    "ambiance/bedroom/state",
                    predicate=lambda m: json.loads(m.payload)["health"] == "ok",
                )

                # The end puts the lamps back exactly as they were.
                answer = await client.delete("/api/v1/rooms/bedroom/spa")
                assert answer.json()["lights"]["synced"] is True
                assert toy.levels == {"left": 50, "right": 50}
                assert len(toy.restored) == 1
    assert toy.stopped == 0  # stopped with the service, below


async def test_a_restart_picks_its_snapshot_up_through_its_codec(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rooms={"bedroom": RoomConfig(routine="quick", lights={"backend": "toy", "lamps": ["a"]})},
    )
    clock = FakeClock()
    async with Ambiance(settings, clock=clock, library=make_library()) as first:
        first.room("bedroom").start_spa()
        assert await first.room("bedroom").settle(2)
    # The session goes on after the restart; the new toy gets the stored snapshot back.
    async with Ambiance(settings, clock=clock, library=make_library()) as second:
        room = second.room("bedroom")
        toy = built[-1]
        assert toy.loaded == 1
        toy.levels["a"] = 5  # changed meanwhile; the end still puts back what was before
        room.stop_session()
        assert await room.settle(2)
        assert toy.levels == {"a": 50}
    assert [(t.started, t.stopped) for t in built] == [(1, 1), (1, 1)]
