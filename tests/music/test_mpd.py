"""The `mpd` music backend against a real MPD (tests/mpd_server.py): playing and the chime.

What the backend sent is read from MPD's own verbose log (`MpdServer.commands`), so a
fade's steps are checked exactly as the player received them; what the player does is
read from it over a connection of the test's own. Fades are short (fade_step 0.05 s) and
every wait is for an event (a fade's task, a logged command, an idle change) with a
timeout, never a fixed sleep. Snapshot and restore, the player going away and whole
sessions through the coordinator are in test_mpd_session.py.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import wave
from pathlib import Path

import pytest

from ambiance.devices.music.base import MusicTarget
from ambiance.devices.music.chime import chime_wav
from ambiance.devices.music.mpd import DUCK_FADE, AsyncMpdClient, MpdMusic, PlayerRefused
from ambiance.errors import DeviceError, DeviceUnavailable
from tests.mpd_server import CHIME, MpdServer
from tests.music.mpd_helpers import CALM, FLOWING, STEP, config, faded, volumes, wait_command

pytestmark = pytest.mark.anyio


class SongWatcher:
    """A second client of the same MPD that notes the current song at every player change."""

    def __init__(self, server: MpdServer) -> None:
        self.server = server
        self.client = AsyncMpdClient()
        self.client.IMMEDIATE_COMMAND_TIMEOUT = 0.01  # back into idle at once: see every change
        self.files: list[str | None] = []
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SongWatcher:
        await self.client.connect(self.server.host, self.server.port)
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.wait([self.task])
        self.client.disconnect()

    async def _run(self) -> None:
        async for _ in self.client.idle(["player"]):
            song = await self.client.currentsong()
            self.files.append(song.get("file"))
            self.changed.set()

    async def wait_for(self, file: str, timeout: float = 5.0) -> None:
        async def seen() -> None:
            while file not in self.files:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(seen(), timeout)


# --- playing ------------------------------------------------------------------------------


async def test_apply_loads_the_playlist_and_fades_in_to_exactly_the_volume(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    mark = mpd_server.mark()
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0.5))
    steps = await faded(music, mpd_server, mark, 40)

    assert mpd_server.queue() == CALM
    status = mpd_server.status()
    assert status["state"] == "play"
    assert status["volume"] == "40"
    # From silence, up in even steps, the last one exactly the target.
    assert steps[0] == 0
    assert steps[-1] == 40
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert len(steps) == 1 + round(0.5 / STEP)
    state = await music.read()
    assert (state.state, state.volume, state.playlist, state.song) == (
        "play",
        40.0,
        "calm",
        CALM[0],
    )


async def test_tracks_are_added_one_by_one(music: MpdMusic, mpd_server: MpdServer) -> None:
    await music.apply(MusicTarget(tracks=(FLOWING[1], CALM[2]), volume=25, fade=0))
    await music.wait_faded()
    assert mpd_server.queue() == [FLOWING[1], CALM[2]]
    assert mpd_server.status()["volume"] == "25"


async def test_same_playlist_only_changes_the_volume(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0.1))
    await music.wait_faded()
    mpd_server.command("seek", 1, 5.0)
    before = mpd_server.status()

    mark = mpd_server.mark()
    await music.apply(MusicTarget(playlist="calm", volume=20, fade=0.3, crossfade=2))
    steps = await faded(music, mpd_server, mark, 20)

    after = mpd_server.status()
    assert after["songid"] == before["songid"]  # the same song goes on...
    assert float(after["elapsed"]) >= float(before["elapsed"])  # ...from where it was
    assert after["playlist"] == before["playlist"]  # the queue's version: untouched
    assert after["xfade"] == "2"
    sent = [c[0] for c in mpd_server.commands(mark)]
    assert "clear" not in sent and "load" not in sent
    assert steps[-1] == 20 and steps == sorted(steps, reverse=True)


async def test_a_paused_player_plays_again_for_the_same_music(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    mpd_server.command("pause", 1)
    await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
    await music.wait_faded()
    assert mpd_server.status()["state"] == "play"
    assert mpd_server.status()["volume"] == "30"


async def test_another_playlist_fades_out_then_reloads(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0.1))
    await music.wait_faded()

    mark = mpd_server.mark()
    await music.apply(MusicTarget(playlist="flowing", volume=30, fade=0.2))
    await faded(music, mpd_server, mark, 30)

    assert mpd_server.queue() == FLOWING
    assert mpd_server.status()["state"] == "play"
    assert mpd_server.status()["volume"] == "30"
    sent = [c for c in mpd_server.commands(mark) if c[0] in ("setvol", "clear", "load", "play")]
    clear = sent.index(["clear"])
    out, back_in = volumes(sent[:clear]), volumes(sent[clear:])
    assert out[-1] == 0 and out == sorted(out, reverse=True) and len(out) > 1
    assert sent[clear + 1] == ["load", "flowing"]
    assert back_in[0] == 0 and back_in[-1] == 30 and back_in == sorted(back_in)
    assert (await music.read()).playlist == "flowing"


async def test_a_newer_fade_takes_over_where_the_older_one_got_to(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    mark = mpd_server.mark()
    await music.apply(MusicTarget(playlist="calm", volume=80, fade=1.0))
    # Half-way up (by the player's own log), ask for less.
    await wait_command(mpd_server, "setvol", "40", since=mark)
    switch = mpd_server.mark()
    await music.apply(MusicTarget(playlist="calm", volume=20, fade=0.4))
    await faded(music, mpd_server, switch, 20)

    steps = volumes(mpd_server.commands(mark))
    peak = steps.index(max(steps))
    up, down = steps[: peak + 1], steps[peak:]
    assert up == sorted(up) and 40 <= max(steps) < 80  # the first fade stopped on its way
    assert down == sorted(down, reverse=True) and down[-1] == 20
    # No jump: every step is one fade's step or less (80/20 = 4 up, (peak-20)/8 down).
    assert all(abs(b - a) <= 8 for a, b in itertools.pairwise(steps))
    assert mpd_server.status()["volume"] == "20"


async def test_stop_fades_out_and_stops(music: MpdMusic, mpd_server: MpdServer) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    mark = mpd_server.mark()
    await music.apply(MusicTarget(stop=True, fade=0.3))  # returns once faded out and stopped

    status = mpd_server.status()
    assert status["state"] == "stop"
    steps = volumes(await wait_command(mpd_server, "stop", since=mark))
    assert steps[-1] == 0 and steps == sorted(steps, reverse=True) and len(steps) > 2
    assert (await music.read()).playlist is None

    # After a stop the music is loaded again, not merely resumed.
    await music.apply(MusicTarget(playlist="calm", volume=30, fade=0))
    await music.wait_faded()
    assert mpd_server.status()["state"] == "play"


async def test_an_unknown_playlist_is_refused_by_name(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    with pytest.raises(PlayerRefused, match="'nowhere'") as caught:
        await music.apply(MusicTarget(playlist="nowhere", volume=30))
    assert not isinstance(caught.value, DeviceUnavailable)
    assert isinstance(caught.value, DeviceError)


# --- the chime ----------------------------------------------------------------------------


async def test_the_cue_plays_then_the_music_goes_on_where_it_was(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0, crossfade=3))
    await music.wait_faded()
    mpd_server.command("seek", 1, 10.0)
    before = mpd_server.status()

    mark = mpd_server.mark()
    async with SongWatcher(mpd_server) as watcher:
        await music.apply(MusicTarget(playlist="calm", volume=40, fade=0.2, crossfade=3, cue=1))
        await watcher.wait_for(CHIME)  # MPD's current song was the chime

    after = mpd_server.status()
    assert after["songid"] == before["songid"]
    assert 10.0 <= float(after["elapsed"]) < 12.0
    assert after["state"] == "play"
    assert after["xfade"] == "3"
    assert CHIME not in mpd_server.queue()
    assert mpd_server.queue() == CALM
    assert (await faded(music, mpd_server, mark, 40))[-1] == 40
    sent = mpd_server.commands(mark)
    chime = sent.index(next(c for c in sent if c[0] == "playid"))
    # Dipped to the duck level, chimed at cue_volume, came back at the duck level...
    assert volumes(sent[:chime])[-2:] == [10, 35]
    assert ["crossfade", "0"] in sent[:chime]
    # ...then up to the stage's volume.
    assert volumes(sent[chime:])[0] == 10

    # The same cue value again: no second chime.
    mark = mpd_server.mark()
    await music.apply(MusicTarget(playlist="calm", volume=30, fade=0, cue=1))
    sent = await wait_command(mpd_server, "setvol", "30", since=mark)  # its last command
    assert not any(c[0] in ("addid", "playid") for c in sent)


async def test_after_the_cue_the_song_goes_on_from_where_the_dip_ended(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    loop = asyncio.get_running_loop()
    began = loop.time()
    mpd_server.command("seek", 1, 10.0)
    mark = mpd_server.mark()
    # The music takes half a second to dip (the stage's fade, under DUCK_FADE), playing on.
    dip = 0.5
    assert dip <= DUCK_FADE
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=dip, cue=1))
    played = loop.time() - began
    seek = next(c for c in await wait_command(mpd_server, "seekid", since=mark) if c[0] == "seekid")
    # Back where the song was when the chime began: not before the dip (which would play
    # the dip's second again), and no further than the song can have got.
    assert 10.0 + 0.6 * dip <= float(seek[2]) <= 10.0 + played


async def test_the_cue_on_a_paused_player_in_repeat_mode(
    music: MpdMusic, mpd_server: MpdServer
) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    await music.wait_faded()
    mpd_server.command("seek", 2, 10.0)
    mpd_server.command("pause", 1)
    mpd_server.command("repeat", 1)  # with single mode, repeat would loop the chime
    before = mpd_server.status()

    async with SongWatcher(mpd_server) as watcher:
        await music.apply(MusicTarget(playlist="calm", volume=40, fade=0, cue=1))
        await watcher.wait_for(CHIME)

    after = mpd_server.status()
    assert after["songid"] == before["songid"]
    assert 10.0 <= float(after["elapsed"]) < 11.0
    assert after["state"] == "play"  # the stage's music plays
    assert (after["repeat"], after["single"]) == ("1", "0")  # the modes are put back
    assert mpd_server.queue() == CALM


async def test_the_cue_with_a_new_playlist(music: MpdMusic, mpd_server: MpdServer) -> None:
    await music.apply(MusicTarget(playlist="calm", volume=40, fade=0))
    async with SongWatcher(mpd_server) as watcher:
        await music.apply(MusicTarget(playlist="flowing", volume=30, fade=0.1, cue=1))
        await watcher.wait_for(CHIME)
    await music.wait_faded()
    assert mpd_server.queue() == FLOWING
    assert mpd_server.status()["volume"] == "30"


async def test_the_cue_on_a_stopped_player(music: MpdMusic, mpd_server: MpdServer) -> None:
    async with SongWatcher(mpd_server) as watcher:
        await music.apply(MusicTarget(playlist="calm", volume=30, fade=0, cue=1))
        await watcher.wait_for(CHIME)
    await music.wait_faded()
    assert mpd_server.queue() == CALM
    assert mpd_server.status()["state"] == "play"


async def test_a_missing_cue_is_warned_about_once_and_the_music_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ambiance.devices.music.mpd")
    with MpdServer(tmp_path / "mpd", chime=False) as server:
        music = MpdMusic(config(server))
        await music.start()
        try:
            await music.apply(MusicTarget(playlist="calm", volume=30, fade=0, cue=1))
            await music.apply(MusicTarget(playlist="calm", volume=20, fade=0, cue=2))
            await music.wait_faded()
            assert server.status()["state"] == "play"
            assert server.status()["volume"] == "20"
            assert server.queue() == CALM
        finally:
            await music.stop()
    warnings = [r for r in caplog.records if "no cue" in r.getMessage()]
    assert len(warnings) == 1
    assert CHIME in warnings[0].getMessage()


async def test_no_cue_configured_plays_no_chime(mpd_server: MpdServer) -> None:
    music = MpdMusic(config(mpd_server, cue=None))
    try:
        mark = mpd_server.mark()
        await music.apply(MusicTarget(playlist="calm", volume=30, fade=0, cue=1))
        await music.wait_faded()
        sent = await wait_command(mpd_server, "setvol", "30", since=mark)  # its last command
        assert not any(c[0] == "addid" for c in sent)
    finally:
        await music.stop()


# --- the chime file -----------------------------------------------------------------------


def test_chime_wav_is_a_short_soft_mono_wav() -> None:
    data = chime_wav(1.0, 16000)
    with wave.open(io.BytesIO(data)) as read:
        assert (read.getnchannels(), read.getsampwidth(), read.getframerate()) == (1, 2, 16000)
        assert read.getnframes() == 16000
        frames = read.readframes(read.getnframes())
    samples = memoryview(frames).cast("h")
    assert samples[0] == 0  # the attack starts from silence: no click
    assert abs(samples[-1]) < 50  # and the end fades to it
    assert 0.2 * 32767 < max(abs(s) for s in samples) < 0.8 * 32767  # soft, but audible
