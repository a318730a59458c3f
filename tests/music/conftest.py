"""A real MPD on a loopback port of its own (see tests/mpd_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mpd_server import MpdServer


@pytest.fixture
def mpd_server(tmp_path: Path) -> Iterator[MpdServer]:
    """MPD with the `calm` and `flowing` playlists and the chime, running, stopped after."""
    with MpdServer(tmp_path / "mpd") as server:
        yield server
