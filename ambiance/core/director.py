"""Turn a stage's scene into what the room should look and sound like now.

Pure: the room hands the result to the devices' coordinators, which converge to it.
Later issues add the profile's adjustments here (warmth, brightness, durations).
"""

from __future__ import annotations

from dataclasses import dataclass

from ambiance.core.scenes import MusicSpec, Scene, Stage
from ambiance.devices.lights.base import LightTarget
from ambiance.devices.music.base import MusicTarget


@dataclass(frozen=True)
class RoomTarget:
    scene: str
    lights: LightTarget
    music: MusicTarget | None  # None: leave the music as it is
    dnd: bool | None
    distractions: bool | None


def music_target(spec: MusicSpec, stage: Stage | None, cue: int) -> MusicTarget:
    tempo = stage.tempo if stage is not None else None
    playlist = spec.playlist_for(tempo)
    return MusicTarget(
        playlist=playlist,
        tracks=() if playlist else tuple(spec.tracks),  # a playlist wins over tracks
        volume=spec.volume,
        fade=spec.fade,
        crossfade=spec.crossfade,
        stop=spec.stop,
        tempo=tempo,
        stage=stage.name if stage is not None else None,
        cue=cue,
    )


def room_target(scene: Scene, stage: Stage | None = None, cue: int = 0) -> RoomTarget:
    """What the room should be like for `scene` (in `stage`, when a session runs).

    `cue` is the room's chime counter: a new value asks the music to chime first.
    """
    return RoomTarget(
        scene=scene.name,
        lights=scene.lights.target(),
        music=music_target(scene.music, stage, cue) if scene.music is not None else None,
        dnd=scene.dnd,
        distractions=scene.distractions,
    )
