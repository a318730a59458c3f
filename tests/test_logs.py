"""Structured logs: a room's work carries its room and session, in text and JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.infra import logs
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.helpers import make_library


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where `logs.setup` writes in the test; the root logger is put back afterwards."""
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    yield out
    for handler in [h for h in root.handlers if h.get_name() == "ambiance"]:
        root.removeHandler(handler)
    root.setLevel(level)


def core(tmp_path: Path, clock: FakeClock) -> Ambiance:
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="quick")})
    return Ambiance(settings, clock=clock, library=make_library())


@pytest.mark.anyio
async def test_json_lines_carry_the_room_and_session(tmp_path: Path, stream: io.StringIO) -> None:
    logs.setup("info", json=True, stream=stream)
    clock = FakeClock()
    async with core(tmp_path, clock) as service:
        room = service.room("bedroom")
        session = room.start_spa()
        room.next()  # prepare -> a: a stage change, logged
        clock.advance(60)  # the timer: a -> b, logged from the timer's callback
        room.stop_session()
        logging.getLogger("ambiance.test").info("outside any room")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines
    for entry in lines:
        assert {"time", "level", "logger", "message", "room", "session"} <= entry.keys()
    work = [e for e in lines if e["logger"] == "ambiance.core.room" and e["session"] is not None]
    messages = [e["message"] for e in work]
    assert any("stage a (next)" in m for m in messages), messages
    assert any("stage b (timer)" in m for m in messages), messages
    assert any(f"session {session.id} stopped" in m for m in messages), messages
    for entry in work:
        assert entry["room"] == "bedroom"
        assert entry["session"] == session.id
    outside = next(e for e in lines if e["message"] == "outside any room")
    assert outside["room"] is None and outside["session"] is None
    assert outside["level"] == "info"


@pytest.mark.anyio
async def test_text_lines_end_with_room_and_session(tmp_path: Path, stream: io.StringIO) -> None:
    logs.setup("info", json=False, stream=stream)
    async with core(tmp_path, FakeClock()) as service:
        room = service.room("bedroom")
        session = room.start_spa()
        room.next()
        logging.getLogger("ambiance.test").info("outside any room")
    text = stream.getvalue()
    stage = next(line for line in text.splitlines() if "stage a (next)" in line)
    assert stage.endswith(f" room=bedroom session={session.id}")
    assert " INFO ambiance.core.room: " in stage
    outside = next(line for line in text.splitlines() if "outside any room" in line)
    assert "room=" not in outside and "session=" not in outside


def test_context_nests_and_resets(stream: io.StringIO) -> None:
    logs.setup("debug", json=True, stream=stream)
    log = logging.getLogger("ambiance.test")
    with logs.context(room="bedroom"):
        with logs.context(session="s1"):
            assert logs.current() == {"room": "bedroom", "session": "s1"}
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                log.exception("it failed")
        log.debug("room only")
    log.warning("none")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["room"], first["session"], first["level"]) == ("bedroom", "s1", "error")
    assert "RuntimeError: boom" in first["exc_info"]
    assert (second["room"], second["session"]) == ("bedroom", None)
    assert (third["room"], third["session"]) == (None, None)
    assert logs.current() == {"room": None, "session": None}


def test_setup_twice_logs_once(stream: io.StringIO) -> None:
    logs.setup("info", json=False, stream=stream)
    logs.setup("info", json=False, stream=stream)
    logging.getLogger("ambiance.test").info("once")
    assert stream.getvalue().count("once") == 1
