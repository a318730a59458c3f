"""A soak test: 1,000 sessions with random commands on a fake clock, in one process.

One core with three rooms of virtual lights and a store on disk. Each session starts in a
random room (stopping the one there first), takes a random walk of commands (next,
previous, pause, resume, goto, extend, set_stage, scene) while the clock jumps ahead so
stages run out and sessions end by themselves. Then nothing has leaked: no asyncio tasks
but the coordinators' own, no threads, no file descriptors, and Python's memory stays flat
from session 500 to 1,000 (the history lives in SQLite, not in Python); the store holds
every session.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sqlite3
import threading
import tracemalloc
from pathlib import Path

import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.room import Room
from ambiance.errors import Conflict, InvalidInput, NotFound
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.helpers import make_library

pytestmark = pytest.mark.anyio

SESSIONS = 1000
WARM_UP = 20  # sessions before the baselines: first-use caches, the SQLite page cache
ROOMS = ("bedroom", "living", "studio")
STAGES = ("prepare", "a", "b", "c", "nowhere")
SCENES = ("warm", "dim", "dark", "disco")
# Python memory may move a little (allocator pools, interned strings), but not with history.
MEMORY_GROWTH_LIMIT = 256 * 1024  # bytes, from session 500 to session 1,000
FD_TOLERANCE = 2


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_kinds() -> tuple[set[asyncio.Task[object]], int, set[asyncio.Task[object]]]:
    """The named tasks (the coordinators' loops), how many of their inner waits there are
    (`asyncio.wait_for` runs `Event.wait()` in a task of its own), and any others."""
    named, waits, others = set(), 0, set()
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        if not task.get_name().startswith("Task-"):
            named.add(task)
        elif getattr(task.get_coro(), "__qualname__", "") == "Event.wait":
            waits += 1
        else:
            others.add(task)
    return named, waits, others


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def one_session(room: Room, clock: FakeClock, rng: random.Random) -> str:
    if room.session is not None:
        room.stop_session()
    session = room.start_spa(routine=rng.choice(["quick", "timed"]))
    for _ in range(rng.randrange(12)):
        if room.session is None:
            break  # it ran to its end
        action = rng.choice(
            ["next", "previous", "pause", "resume", "goto", "extend", "set_stage", "scene", "wait"]
        )
        try:
            if action == "next":
                room.next()
            elif action == "previous":
                room.previous()
            elif action == "pause":
                room.pause()
            elif action == "resume":
                room.resume()
            elif action == "goto":
                room.goto(rng.choice(STAGES))
            elif action == "extend":
                room.extend(rng.choice([1, 30, 600, -5]))
            elif action == "set_stage":
                room.set_stage(rng.choice(STAGES), rng.choice([None, 0.5, 45, 900]))
            elif action == "scene":
                room.apply_scene(rng.choice(SCENES))
            else:
                clock.advance(rng.choice([1, 10, 59, 61, 120, 400, 3600]))
        except (Conflict, NotFound, InvalidInput):
            pass
    if rng.random() < 0.3:
        clock.advance(rng.choice([30, 300, 3600]))  # left alone: it may finish by itself
    await room.settle(1.0)  # the coordinators catch up, as they would between taps
    return session.id


async def test_a_thousand_sessions_leak_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    clock = FakeClock()
    settings = Settings(
        data_dir=tmp_path,
        rooms={name: RoomConfig(routine="quick") for name in ROOMS},
        devices=DevicesConfig(settle_timeout=1),
    )
    core = Ambiance(settings, clock=clock, library=make_library())
    ids: set[str] = set()
    async with core:
        rooms = [core.room(name) for name in ROOMS]
        for _ in range(WARM_UP):
            ids.add(await one_session(rng.choice(rooms), clock, rng))

        gc.collect()
        coordinators = sum(len(room.coordinators) for room in rooms)
        named, _, others = task_kinds()
        assert len(named) == coordinators
        threads = set(threading.enumerate())
        fds = open_fds()
        subscribers = len(core.bus._subscribers)
        tracemalloc.start()
        try:
            at_500 = 0
            for i in range(1, SESSIONS - WARM_UP + 1):
                ids.add(await one_session(rng.choice(rooms), clock, rng))
                if i + WARM_UP == 500:
                    at_500 = traced()
            at_1000 = traced()
        finally:
            tracemalloc.stop()

        for room in rooms:
            if room.session is not None:
                room.stop_session()
            await room.settle(1.0)

        named_now, waits_now, others_now = task_kinds()
        assert named_now == named  # the coordinators' own loops, the same ones
        assert waits_now <= coordinators  # at most one wait each
        assert others_now <= others, others_now - others
        assert set(threading.enumerate()) <= threads
        assert open_fds() <= fds + FD_TOLERANCE
        assert len(core.bus._subscribers) == subscribers
        assert at_1000 - at_500 < MEMORY_GROWTH_LIMIT, (at_500, at_1000)
        assert isinstance(clock, FakeClock) and clock.pending <= len(ROOMS)

    assert len(ids) == SESSIONS
    with sqlite3.connect(tmp_path / "ambiance.db") as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()
        (live,) = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE status IN ('running', 'paused')"
        ).fetchone()
    assert count == SESSIONS
    assert live == 0
