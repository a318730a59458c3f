"""Music keyed to every stage, end to end: the room's routine drives a real MPD."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.scenes import Guidance, Library, LightsSpec, MusicSpec, Routine, Scene, Stage
from ambiance.devices.music.mpd.config import MpdMusicConfig
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.mpd_server import LIBRARY, MpdServer

pytestmark = pytest.mark.anyio


def library() -> Library:
    lights = LightsSpec(kelvin=2400, brightness=20)
    scenes = {
        "calm": Scene(
            name="calm", lights=lights, music=MusicSpec(playlist="calm", volume=30, fade=0.2)
        ),
        "flow": Scene(
            name="flow", lights=lights, music=MusicSpec(playlist="flowing", volume=45, fade=0.2)
        ),
        "hush": Scene(
            name="hush", lights=lights, music=MusicSpec(playlist="flowing", volume=12, fade=0.2)
        ),
    }
    g = Guidance(summary=".")
    stages = [
        Stage(name="one", scene="calm", duration=30, guidance=g),
        Stage(name="two", scene="flow", duration=30, guidance=g),
        Stage(name="three", scene="hush", duration=30, guidance=g),
    ]
    return Library(
        scenes=scenes,
        routines={"fast": Routine(name="fast", stages=stages, restore_transition=0.2)},
    )


def files(playlist: str) -> list[str]:
    return [file for file, _, _ in LIBRARY[playlist]]


async def test_each_stage_plays_its_music_and_the_end_puts_the_player_back(
    mpd_server: MpdServer, tmp_path: Path
) -> None:
    # What was playing before: the `calm` queue, paused in its second song, at 70 %.
    before = mpd_server.client()
    before.load("calm")
    before.setvol(70)
    before.play(1)
    before.pause(1)
    before.disconnect()
    settings = Settings(
        data_dir=tmp_path,
        rooms={
            "bedroom": RoomConfig(
                routine="fast",
                music=MpdMusicConfig(
                    backend="mpd", host="127.0.0.1", port=mpd_server.port, cue=None, fade_step=0.05
                ),
            )
        },
        devices=DevicesConfig(retry_initial=0.05, retry_max=0.2),
    )
    clock = FakeClock()
    async with Ambiance(settings, clock=clock, library=library()) as core:
        room = core.room("bedroom")
        assert room.music is not None
        room.start_spa()
        expected = [("one", "calm", 30), ("two", "flowing", 45), ("three", "flowing", 12)]
        for index, (stage, playlist, volume) in enumerate(expected):
            if index:
                clock.advance(30)
            assert await room.settle(10)
            backend = room.music.backend
            await backend.wait_faded()  # type: ignore[attr-defined]
            status = mpd_server.status()
            assert room.session is not None and room.session.stage.name == stage
            assert mpd_server.queue() == files(playlist)
            assert status["state"] == "play"
            assert int(status["volume"]) == volume
        clock.advance(30)  # the end
        assert await room.settle(10)
    status = mpd_server.status()
    assert mpd_server.queue() == files("calm")
    assert (status["state"], status["song"], int(status["volume"])) == ("pause", "1", 70)
