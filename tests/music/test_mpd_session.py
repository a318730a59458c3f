"""The `mpd` music backend against a real MPD: snapshot and restore, the player going
away, and whole sessions through the coordinator (see test_mpd.py for how the tests read
what the player did)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ambiance.core.coordinator import Coordinator, Drifted
from ambiance.core.events import EventBus
from ambiance.devices.music.base import MusicState, MusicTarget
from ambiance.devices.music.mpd import MpdMusic, MpdSnapshot, PlayerRefused
from ambiance.errors import DeviceUnavailable
from ambiance.infra.clock import SystemClock
from tests.mpd_server import MpdServer, free_port
from tests.music.mpd_helpers import (
    CALM,
    FLOWING,
    config,
    faded,
    set_up_the_users_music,
    volumes,
    wait_command,
)

pytestmark = pytest.mark.anyio

# --- snapshot and restore -----------------------------------------------------------------


@pytest.mark.parametrize("state", ["play", "pause", "stop"])
async def test_restore_puts_the_player_back_exactly(
    music: MpdMusic, mpd_server: MpdServer, state: str
) -> None:
    set_up_the_users_music(mpd_server, state)
    stored = json.loads(json.dumps(await music.snapshot()))  # as the store keeps it
    snapshot = MpdSnapshot.from_json(stored)
    assert snapshot.queue == (*FLOWING, CALM[2])
    assert (snapshot.state, snapshot.song, snapshot.volume) == (state, 1, 55)
    assert (snapshot.repeat, snapshot.random, snapshot.crossfade) == (True, False, 4)

    await music.apply(MusicTarget(playlist="calm", volume=30, fade=0.1, cue=1))
    await music.apply(MusicTarget(playlist="calm", volume=20, fade=0.1))
    await music.restore(stored, 0.2)

    status = mpd_server.status()
    assert mpd_server.queue() == [*FLOWING, CALM[2]]
    assert status["state"] == state
    assert status["song"] == "1"
    assert status["volume"] == "55"
    assert (status["repeat"], status["random"], status["single"], status["consume"]) == (
        "1",
        "0",
        "0",
        "0",
    )
    assert status["xfade"] == "4"
    if state != "stop":
        assert snapshot.elapsed is not None
        assert snapshot.elapsed <= float(status["elapsed"]) < snapshot.elapsed + 1.0
    assert (await music.read()).playlist is None


async def test_a_snapshot_that_cannot_be_read_stops_the_music(
    music: MpdMusic, mpd_server: MpdServer, caplog: pytest.LogCaptureFixture
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.restore({"state": "dancing"}, 0.1)
    assert mpd_server.status()["state"] == "stop"
    assert "cannot put the player back" in caplog.text


async def test_restore_fades_out_first(music: MpdMusic, mpd_server: MpdServer) -> None:
    set_up_the_users_music(mpd_server, "play")
    snapshot = await music.snapshot()
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    mark = mpd_server.mark()
    await music.restore(snapshot, 0.3)
    sent = await wait_command(mpd_server, "setvol", "55", since=mark)  # its last command
    out = volumes(sent[: sent.index(["clear"])])
    assert out == sorted(out, reverse=True) and out[-1] == 0 and len(out) > 2


async def test_restore_stop_stops_and_puts_the_volume_back(mpd_server: MpdServer) -> None:
    set_up_the_users_music(mpd_server, "play")
    music = MpdMusic(config(mpd_server, restore="stop"))
    try:
        snapshot = await music.snapshot()
        await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
        await music.restore(snapshot, 0.1)
        status = mpd_server.status()
        assert status["state"] == "stop"
        assert status["volume"] == "55"
        assert mpd_server.queue() == CALM  # left as the session had it
    finally:
        await music.stop()


# --- the player going away ----------------------------------------------------------------


async def test_a_crashed_player_is_unavailable_then_reconnected(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()

    await asyncio.to_thread(mpd_server.kill)
    with pytest.raises(DeviceUnavailable):
        await music.read()
    with pytest.raises(DeviceUnavailable):
        await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))

    await asyncio.to_thread(mpd_server.start)  # same port, empty queue, volume 100
    mark = mpd_server.mark()
    with pytest.raises(Drifted):  # reconnects by itself, and says the room's music is gone
        await music.read()
    # `read()` only reports: the coordinator applies the room's music again.
    assert not any(c[0] in ("load", "play", "setvol") for c in mpd_server.commands(mark))
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    state = await music.read()  # once: the music is back
    assert state.state == "play"
    assert mpd_server.queue() == CALM
    assert mpd_server.status()["volume"] == "40"
    await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
    await music.wait_faded()
    assert mpd_server.status()["volume"] == "30"


async def test_a_player_that_does_not_answer_times_out(mpd_server: MpdServer) -> None:
    music = MpdMusic(config(mpd_server, timeout=0.3))
    try:
        await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
        await music.wait_faded()
        assert mpd_server.pid is not None
        os.kill(mpd_server.pid, signal.SIGSTOP)  # the socket stays open; nothing answers
        try:
            with pytest.raises(DeviceUnavailable, match="did not answer"):
                await music.read()
        finally:
            os.kill(mpd_server.pid, signal.SIGCONT)
        assert (await music.read()).state == "play"  # on a new connection
    finally:
        await music.stop()


async def test_a_player_that_is_down_at_start(tmp_path: Path) -> None:
    port = free_port()
    music = MpdMusic(config(port=port))
    await music.start()  # not an error
    try:
        with pytest.raises(DeviceUnavailable):
            await music.read()
        with MpdServer(tmp_path / "mpd", port=port) as server:
            await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
            await music.wait_faded()
            assert server.status()["state"] == "play"
    finally:
        await music.stop()


async def test_a_password(tmp_path: Path) -> None:
    with MpdServer(tmp_path / "mpd", password="spa-time") as server:
        music = MpdMusic(config(server))
        try:
            await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
            assert (await music.read()).state == "play"
        finally:
            await music.stop()
        wrong = MpdMusic(config(server, password="nope"))
        with pytest.raises(PlayerRefused, match="password"):
            await wrong.read()
        await wrong.stop()


# --- through the coordinator --------------------------------------------------------------


def music_coordinator(
    music: MpdMusic, *, poll_interval: float = 30.0
) -> Coordinator[MusicTarget, MusicState, Any]:
    """A room's music coordinator that retries quickly."""
    return Coordinator(
        "bedroom",
        "music",
        music,
        EventBus(),
        SystemClock(),
        retry_initial=0.05,
        retry_max=0.2,
        poll_interval=poll_interval,
    )


async def test_a_session_through_the_coordinator(mpd_server: MpdServer) -> None:
    """Snapshot before the first change, the stage's music, then the room put back; with the
    player crashing mid-session: degraded, then the music back by itself."""
    set_up_the_users_music(mpd_server, "play")
    coordinator = music_coordinator(MpdMusic(config(mpd_server)))
    await coordinator.start()
    try:
        coordinator.begin_session()
        coordinator.show(MusicTarget(playlist="calm", volume=30, fade=0.1, cue=1))
        assert await coordinator.wait_synced(5)
        assert mpd_server.queue() == CALM
        assert coordinator.state is not None and coordinator.state.playlist == "calm"

        await asyncio.to_thread(mpd_server.kill)
        await asyncio.to_thread(mpd_server.start)
        coordinator.show(MusicTarget(playlist="calm", volume=20, fade=0))
        assert await coordinator.wait_synced(5)
        assert mpd_server.queue() == CALM
        assert mpd_server.status()["state"] == "play"

        coordinator.end_session(0.1)
        assert await coordinator.wait_synced(5)
        # The snapshot is from before the crash: the user's music comes back all the same.
        assert mpd_server.queue() == [*FLOWING, CALM[2]]
        assert mpd_server.status()["state"] == "play"
        assert mpd_server.status()["volume"] == "55"
    finally:
        await coordinator.stop()


async def test_a_player_restarted_mid_stage_gets_the_stages_music_again(
    mpd_server: MpdServer,
) -> None:
    """Nothing new is asked after the player restarted: the coordinator's poll reads it, the
    backend reports the drift, and the coordinator applies the stage's music again."""
    music = MpdMusic(config(mpd_server))
    coordinator = music_coordinator(music, poll_interval=0.1)
    await coordinator.start()
    try:
        coordinator.show(MusicTarget(playlist="calm", volume=30, fade=0))
        assert await coordinator.wait_synced(5)
        mark = mpd_server.mark()

        await asyncio.to_thread(mpd_server.kill)
        await asyncio.to_thread(mpd_server.start)  # same port, empty queue, volume 100
        await wait_command(mpd_server, "load", "calm", since=mark)
        assert await coordinator.wait_synced(5)
        assert (await faded(music, mpd_server, mark, 30))[-1] == 30
        assert mpd_server.queue() == CALM
        assert mpd_server.status()["state"] == "play"
        assert coordinator.state is not None and coordinator.state.playlist == "calm"
    finally:
        await coordinator.stop()
