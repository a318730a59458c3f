"""Turn a stage's scene into what the room should look and sound like now.

Pure: the room hands the result to the devices' coordinators, which converge to it.
Later issues add the profile's adjustments here (warmth, brightness, durations).
"""

from __future__ import annotations

from dataclasses import dataclass

from .lights.base import LightTarget
from .scenes import MusicSpec, Scene


@dataclass(frozen=True)
class RoomTarget:
    scene: str
    lights: LightTarget
    music: MusicSpec | None
    dnd: bool | None
    distractions: bool | None


def room_target(scene: Scene) -> RoomTarget:
    return RoomTarget(
        scene=scene.name,
        lights=scene.lights.target(),
        music=scene.music,
        dnd=scene.dnd,
        distractions=scene.distractions,
    )
