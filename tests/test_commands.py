"""The command table: what the doors make of it, its reference doc, and a toy command
added from this module alone that reaches the room over REST, MQTT and Home Assistant."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Literal

import httpx
import pytest
from pydantic import Field

from ambiance.config import RoomConfig, Settings
from ambiance.core import commands
from ambiance.core.commands import Arguments, Button, Command, NoArguments, Rest
from ambiance.core.room import Room
from ambiance.doors.mqtt_api import parse_command
from ambiance.errors import InvalidInput
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import make_library
from tests.mosquitto import Mosquitto, Received, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5.0

# Every command route as it has always been (and toggle_pause, new), under /api/v1.
ROUTES = {
    ("POST", "/rooms/{room}/spa"): "start_spa",
    ("DELETE", "/rooms/{room}/spa"): "stop_spa",
    ("POST", "/rooms/{room}/session/{action}"): "command",
    ("POST", "/rooms/{room}/session/goto"): "goto",
    ("POST", "/rooms/{room}/session/extend"): "extend",
    ("POST", "/rooms/{room}/session/today"): "answer_today",
    ("POST", "/rooms/{room}/session/checkin"): "checkin",
    ("PUT", "/rooms/{room}/stage"): "set_stage",
    ("POST", "/rooms/{room}/scene"): "apply_scene",
}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("commands_doc", ROOT / "scripts/commands_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_doc_matches_the_table() -> None:
    script = _load_script()
    text = (ROOT / "docs/commands.md").read_text(encoding="utf-8")
    assert script.written(text) == text, "docs/commands.md is out of date: run the script"
    for name in commands.names():
        assert f"| `{name}` |" in text


def test_the_rest_routes_keep_their_paths_and_operations() -> None:
    app = create_app(Ambiance(Settings()))
    operations = {
        (method.upper(), path.removeprefix("/api/v1")): operation["operationId"]
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/api/v1/rooms/{room}/") and "feedback" not in path
    }
    assert {key: value.split("_api_v1")[0] for key, value in operations.items()} == ROUTES
    paths = app.openapi()["paths"]
    start = paths["/api/v1/rooms/{room}/spa"]["post"]
    assert set(start["responses"]) == {"201", "400", "404", "409", "422"}
    assert start["requestBody"].get("required") is not True  # the body is optional
    session = paths["/api/v1/rooms/{room}/session/{action}"]["post"]
    action = next(p for p in session["parameters"] if p["name"] == "action")
    assert action["schema"]["enum"] == [
        "stop",
        "pause",
        "resume",
        "toggle_pause",
        "next",
        "previous",
    ]
    scene = paths["/api/v1/rooms/{room}/scene"]["post"]
    assert "409" not in scene["responses"]  # a scene fits any state


def test_a_command_is_registered_once_and_shared_routes_take_no_arguments() -> None:
    with pytest.raises(ValueError, match="exists already"):
        commands.register(Command("next", "again", NoArguments, lambda r, _: None, ()))
    with pytest.raises(ValueError, match="takes no arguments"):
        commands.register(
            Command("dim", "x", DimRequest, lambda r, _: None, (commands.SESSION,), bare=True)
        )
    assert "dim" not in commands.names()


# --- a toy command, from this module alone ----------------------------------------------


class DimRequest(Arguments):
    to: Literal["dim", "dark"] = Field(default="dim", description="How dim.")


def _dim(room: Room, args: DimRequest) -> None:
    room.apply_scene(args.to)


DIM = Command(
    "dim",
    "Dim the room to a scene (a toy).",
    DimRequest,
    _dim,
    (Rest("POST", "/dim", "Dim the room", optional_body=True),),
    bare=True,
    conflicts=False,
    button=Button("dim", "Dim", "mdi:brightness-4"),
)


@pytest.fixture
def dim() -> Iterator[Command[DimRequest]]:
    unregister = commands.register(DIM)
    try:
        yield DIM
    finally:
        unregister()


def _scene_after(sub: Subscriber, topic: str, scene: str) -> Callable[[Received], bool]:
    """A state message with this scene that arrives after now."""
    old = {id(m) for m in sub.matching(topic)}

    def fits(m: Received) -> bool:
        return id(m) not in old and json.loads(m.payload).get("scene") == scene

    return fits


async def test_a_registered_command_reaches_the_room_through_every_door(
    dim: Command[DimRequest], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with Subscriber(mosquitto, "ambiance/#", "homeassistant/#") as sub:
        settings = Settings(
            data_dir=tmp_path,
            mqtt=mqtt_settings(mosquitto),
            rooms={"bedroom": RoomConfig(routine="quick")},
        )
        async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
            assert await core.mqtt.wait_ready(TIMEOUT)
            # REST: a freshly made app has the route, its body model and its defaults.
            transport = httpx.ASGITransport(app=create_app(core))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.post("/api/v1/rooms/bedroom/dim")
                assert r.status_code == 200, r.text
                assert r.json()["scene"] == "dim"
                r = await client.post("/api/v1/rooms/bedroom/dim", json={"to": "dark"})
                assert r.json()["scene"] == "dark"
                r = await client.post("/api/v1/rooms/bedroom/dim", json={"to": "disco"})
                assert r.status_code == 422
                assert r.json()["error"]["detail"][0]["field"] == "body.to"
                schema = (await client.get("/openapi.json")).json()
                assert schema["paths"]["/api/v1/rooms/{room}/dim"]["post"]["summary"] == (
                    "Dim the room"
                )
                assert "DimRequest" in schema["components"]["schemas"]

            # MQTT: the bare word, JSON with an argument, and a value out of range.
            state = "ambiance/bedroom/state"
            fits = _scene_after(sub, state, "dim")
            sub.publish("ambiance/bedroom/cmd", "dim")
            await sub.async_wait_for(state, timeout=TIMEOUT, predicate=fits)
            fits = _scene_after(sub, state, "dark")
            sub.publish("ambiance/bedroom/cmd", '{"action": "dim", "to": "dark"}')
            await sub.async_wait_for(state, timeout=TIMEOUT, predicate=fits)
            assert core.room("bedroom").scene == "dark"
            sub.publish("ambiance/bedroom/cmd", '{"action": "dim", "to": "x", "id": "d1"}')
            error = await sub.async_wait_for("ambiance/bedroom/error", timeout=TIMEOUT)
            body = json.loads(error.payload)
            assert body["error"]["code"] == "invalid_input"
            assert body["error"]["message"].startswith("to: ")
            assert body["id"] == "d1"

            # Home Assistant: the command's button, sending the command.
            topic = "homeassistant/button/ambiance_bedroom/dim/config"
            config = json.loads((await sub.async_wait_for(topic, timeout=TIMEOUT)).payload)
            assert config["payload_press"] == '{"action":"dim"}'
            assert config["command_topic"] == "ambiance/bedroom/cmd"


async def test_a_command_taken_out_is_gone_from_every_door(tmp_path: Path) -> None:
    unregister = commands.register(DIM)
    assert parse_command(b"dim").action == "dim"
    unregister()
    assert "dim" not in commands.names()
    with pytest.raises(InvalidInput, match="unknown action"):
        parse_command(b'{"action": "dim"}')
    with pytest.raises(InvalidInput, match="not JSON"):
        parse_command(b"dim")
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="quick")})
    async with Ambiance(settings, clock=FakeClock(), library=make_library()) as core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/api/v1/rooms/bedroom/dim")
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "not_found"
