"""The director: a scene (in a stage) becomes what the room should be like."""

from __future__ import annotations

from ambiance.core.director import room_target
from ambiance.core.scenes import Guidance, LightsSpec, MusicSpec, Scene, Stage

LIGHTS = LightsSpec(kelvin=2400, brightness=25, transition=8)


def stage(tempo: int | None) -> Stage:
    return Stage(name="s", scene="x", duration=60, tempo=tempo, guidance=Guidance(summary="."))


def scene(music: MusicSpec | None) -> Scene:
    return Scene(name="x", lights=LIGHTS, music=music, dnd=True, distractions=False)


def test_lights_dnd_and_distractions_come_from_the_scene() -> None:
    target = room_target(scene(None))
    assert (target.lights.on, target.lights.brightness, target.lights.kelvin) == (True, 25, 2400)
    assert target.lights.transition == 8
    assert target.music is None  # no music in the scene: leave it as it is
    assert (target.dnd, target.distractions) == (True, False)


def test_a_brightness_of_zero_switches_the_lights_off() -> None:
    dark = Scene(name="x", lights=LightsSpec(brightness=0))
    assert room_target(dark).lights.on is False


def test_music_carries_volume_fades_stage_and_cue() -> None:
    spec = MusicSpec(playlist="calm", volume=25, fade=4, crossfade=6)
    target = room_target(scene(spec), stage(None), cue=3).music
    assert target is not None
    assert (target.playlist, target.tracks, target.volume) == ("calm", (), 25)
    assert (target.fade, target.crossfade, target.stage, target.cue) == (4, 6, "s", 3)


def test_tracks_when_there_is_no_playlist() -> None:
    spec = MusicSpec(tracks=["a.flac", "b.flac"])
    target = room_target(scene(spec)).music
    assert target is not None
    assert (target.playlist, target.tracks) == (None, ("a.flac", "b.flac"))


def test_the_playlist_nearest_the_stage_tempo_plays() -> None:
    spec = MusicSpec(playlist="calm", by_tempo={40: "slow", 60: "medium", 90: "brisk"})
    picks = {
        tempo: room_target(scene(spec), stage(tempo)).music.playlist  # type: ignore[union-attr]
        for tempo in (None, 20, 45, 50, 75, 76, 200)
    }
    # No tempo: the plain playlist; a tie goes to the slower one.
    assert picks == {
        None: "calm",
        20: "slow",
        45: "slow",
        50: "slow",
        75: "medium",
        76: "brisk",
        200: "brisk",
    }
    assert room_target(scene(spec), stage(60)).music.tempo == 60  # type: ignore[union-attr]


def test_by_tempo_alone_plays_its_slowest_without_a_tempo() -> None:
    spec = MusicSpec(by_tempo={60: "medium", 40: "slow"})
    assert room_target(scene(spec), stage(None)).music.playlist == "slow"  # type: ignore[union-attr]
