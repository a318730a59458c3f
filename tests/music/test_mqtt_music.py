"""The `mqtt` music backend: what each stage wants, handed over on the real broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.scenes import Guidance, Library, LightsSpec, MusicSpec, Routine, Scene, Stage
from ambiance.devices.music.mqtt import MqttMusicConfig
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.mosquitto import Mosquitto, Subscriber, async_read_retained
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

TOPIC = "ambiance/bedroom/music"


def library() -> Library:
    lights = LightsSpec(kelvin=2400, brightness=20)
    scenes = {
        "calm": Scene(
            name="calm", lights=lights, music=MusicSpec(playlist="calm", volume=30, fade=4)
        ),
        "paced": Scene(
            name="paced",
            lights=lights,
            music=MusicSpec(by_tempo={40: "slow", 70: "flowing"}, volume=25, crossfade=5),
        ),
        "quiet": Scene(name="quiet", lights=lights),  # no music: it plays on
        "silence": Scene(name="silence", lights=lights, music=MusicSpec(stop=True, fade=8)),
    }
    g = Guidance(summary=".")
    stages = [
        Stage(name="one", scene="calm", duration=60, guidance=g),
        Stage(name="two", scene="paced", duration=60, tempo=72, guidance=g),
        Stage(name="three", scene="quiet", duration=60, guidance=g),
        Stage(name="four", scene="silence", duration=60, guidance=g),
    ]
    return Library(scenes=scenes, routines={"r": Routine(name="r", stages=stages)})


@pytest.fixture
async def core(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Ambiance]:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={"bedroom": RoomConfig(routine="r", music=MqttMusicConfig(backend="mqtt"))},
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.1),
    )
    async with Ambiance(settings, clock=FakeClock(), library=library()) as service:
        assert await service.mqtt.wait_ready(5)
        yield service


def live(sub: Subscriber) -> list[Any]:
    """The music messages sent while `sub` listened (not the retained one it found)."""
    return [m for m in sub.matching(TOPIC) if not m.retain]


async def next_message(sub: Subscriber, count: int) -> dict[str, Any]:
    """Wait for the `count`-th live message on the music topic."""
    await sub.async_wait_for(TOPIC, predicate=lambda m: len(live(sub)) >= count)
    return dict(json.loads(live(sub)[count - 1].payload))


async def test_each_stage_hands_over_its_music(core: Ambiance, mosquitto: Mosquitto) -> None:
    room = core.room("bedroom")
    with Subscriber(mosquitto, TOPIC) as sub:
        room.start_spa()
        first = await next_message(sub, 1)
        assert first["state"] == "play"
        assert (first["playlist"], first["volume"], first["fade"]) == ("calm", 30, 4)
        assert (first["room"], first["stage"], first["cue"]) == ("bedroom", "one", 0)

        room.next()
        second = await next_message(sub, 2)
        # Tempo 72 strokes a minute picks the nearest playlist.
        assert (second["playlist"], second["tempo"], second["crossfade"]) == ("flowing", 72, 5)
        assert second["cue"] == 1  # a chime at the stage change

        room.next()  # a scene without music: the music plays on, and the chime sounds
        third = await next_message(sub, 3)
        assert (third["playlist"], third["stage"], third["cue"]) == ("flowing", "three", 2)
        room.next()
        fourth = await next_message(sub, 4)
        assert (fourth["state"], fourth["fade"], fourth["stage"]) == ("stop", 8, "four")

        room.stop_session()
        end = await next_message(sub, 5)
        assert end["state"] == "restore"
    retained = await async_read_retained(mosquitto, TOPIC)
    assert json.loads(retained[TOPIC])["state"] == "restore"


async def test_quick_taps_send_only_the_newest(core: Ambiance, mosquitto: Mosquitto) -> None:
    room = core.room("bedroom")
    assert room.music is not None
    with Subscriber(mosquitto, TOPIC) as sub:
        room.start_spa()
        await next_message(sub, 1)
        for _ in range(3):
            room.next()
        room.previous()  # back to "three", whose scene has no music: "four"'s stop holds
        assert await room.music.wait_synced(5)
        last = await next_message(sub, 2)
        # One client's messages arrive in order: had a tap in between been sent, it would
        # be the second message, not this one.
        assert (last["state"], last["stage"], last["cue"]) == ("stop", "three", 4)


async def test_the_room_shows_what_plays(core: Ambiance) -> None:
    room = core.room("bedroom")
    room.start_spa()
    assert room.music is not None
    assert await room.music.wait_synced(5)
    view = room.view().model_dump(mode="json")["music"]
    assert view["backend"] == "mqtt"
    assert view["desired"]["playlist"] == "calm"
    assert view["player"]["state"] == "play"
