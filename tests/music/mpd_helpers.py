"""What the MPD backend's tests share: the backend's settings for a test MPD, and waits
for what MPD logged."""

from __future__ import annotations

import asyncio
from typing import Any

from ambiance.devices.music.mpd import MpdMusic
from ambiance.devices.music.mpd.config import MpdMusicConfig
from tests.mpd_server import LIBRARY, MpdServer, free_port

STEP = 0.05
CALM = [file for file, _, _ in LIBRARY["calm"]]
FLOWING = [file for file, _, _ in LIBRARY["flowing"]]


def config(server: MpdServer | None = None, **overrides: Any) -> MpdMusicConfig:
    values: dict[str, Any] = {
        "backend": "mpd",
        "host": server.host if server is not None else "127.0.0.1",
        "port": server.port if server is not None else free_port(),
        "timeout": 2.0,
        "fade_step": STEP,
        "cue_volume": 35,
    }
    if server is not None and server.password is not None:
        values["password"] = server.password
    values.update(overrides)
    return MpdMusicConfig(**values)


def volumes(commands: list[list[str]]) -> list[int]:
    return [int(c[1]) for c in commands if c[0] == "setvol"]


async def wait_command(server: MpdServer, *words: str, since: int = 0) -> list[list[str]]:
    return await asyncio.to_thread(server.wait_for_command, *words, since=since)


async def faded(music: MpdMusic, server: MpdServer, since: int, volume: int) -> list[int]:
    """Wait for the running fade, and for MPD to have logged its last step; its volumes."""
    await asyncio.wait_for(music.wait_faded(), 5)
    return volumes(await wait_command(server, "setvol", str(volume), since=since))


def set_up_the_users_music(server: MpdServer, state: str) -> None:
    """What the household was listening to before the session."""
    client = server.client()
    try:
        for file in [*FLOWING, CALM[2]]:
            client.add(file)
        client.repeat(1)
        client.random(0)
        client.single(0)
        client.consume(0)
        client.crossfade(4)
        client.setvol(55)
        client.seek(1, 12.0)
        if state == "pause":
            client.pause(1)
        elif state == "stop":
            client.stop()
    finally:
        client.disconnect()
