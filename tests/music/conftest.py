"""A real MPD on a loopback port of its own (see tests/mpd_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ambiance.devices.music.mpd import MpdMusic
from tests.mpd_server import MpdServer
from tests.music.mpd_helpers import config


@pytest.fixture
def mpd_server(tmp_path: Path) -> Iterator[MpdServer]:
    """MPD with the `calm` and `flowing` playlists and the chime, running, stopped after."""
    with MpdServer(tmp_path / "mpd") as server:
        yield server


@pytest.fixture
async def music(mpd_server: MpdServer) -> AsyncIterator[MpdMusic]:
    """The `mpd` backend on `mpd_server`, started, stopped after."""
    backend = MpdMusic(config(mpd_server))
    await backend.start()
    yield backend
    await backend.stop()
