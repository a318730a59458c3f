from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import EventLog, make_library


@dataclass
class Api:
    client: httpx.AsyncClient
    core: Ambiance
    clock: FakeClock
    log: EventLog


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path,
        rooms={"bedroom": RoomConfig(routine="quick"), "living": RoomConfig(routine="timed")},
    )
    clock = FakeClock()
    core = Ambiance(settings, clock=clock, library=make_library())
    log = EventLog(core.bus)
    async with core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://ambiance") as client:
            yield Api(client, core, clock, log)
