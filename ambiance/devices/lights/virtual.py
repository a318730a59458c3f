"""Virtual lights: in memory, the default. They behave like Hue lights (bri 1-254, ct in
mireds clamped to each light's range) so that a demo shows what a real room would do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from ambiance.devices.lights.base import (
    LightState,
    LightTarget,
    SavedLight,
    Snapshot,
    SnapshotsAsJson,
    bri_to_percent,
    kelvin_to_mired,
    mired_to_kelvin,
    percent_to_bri,
)
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, register


@dataclass
class VirtualLight:
    id: str
    name: str
    mired_min: int = 153
    mired_max: int = 500
    on: bool = True
    bri: int = 200
    ct: int = 370
    transition: float = 0.0  # the last transition asked for, in seconds

    def state(self) -> LightState:
        return LightState(
            id=self.id,
            name=self.name,
            on=self.on,
            brightness=bri_to_percent(self.bri),
            kelvin=mired_to_kelvin(self.ct),
        )


class VirtualLights(SnapshotsAsJson):
    kind = "virtual"

    def __init__(self, lights: list[VirtualLight]) -> None:
        self.lights = lights
        self.commands = 0  # group commands received, as a bridge would count them

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def read(self) -> list[LightState]:
        return [light.state() for light in self.lights]

    async def apply(self, target: LightTarget) -> None:
        self.commands += 1
        for light in self.lights:
            light.transition = target.transition
            light.on = target.on
            if not target.on:
                continue
            light.bri = percent_to_bri(target.brightness)
            if target.kelvin is not None:
                light.ct = kelvin_to_mired(target.kelvin, light.mired_min, light.mired_max)

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            tuple(
                SavedLight(light.id, light.name, {"on": light.on, "bri": light.bri, "ct": light.ct})
                for light in self.lights
            )
        )

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        by_id = {light.id: light for light in self.lights}
        for saved in snapshot.lights:
            light = by_id.get(saved.id)
            if light is None:  # removed from the config since the snapshot
                continue
            light.on = bool(saved.state["on"])
            light.bri = int(saved.state["bri"])
            light.ct = int(saved.state["ct"])
            light.transition = transition


# --- the backend ---------------------------------------------------------------------------


class VirtualLightConfig(BackendConfig):
    name: str = Field(min_length=1, max_length=64)
    kelvin_min: int = Field(default=2000, ge=1000, le=10000)
    kelvin_max: int = Field(default=6500, ge=1000, le=10000)


class VirtualLightsConfig(BackendConfig):
    backend: Literal["virtual"] = "virtual"
    lights: list[VirtualLightConfig] = Field(
        default_factory=lambda: [
            VirtualLightConfig(name=n)
            for n in ("ceiling", "bedside left", "bedside right", "floor lamp")
        ],
        min_length=1,
    )

    @field_validator("lights", mode="before")
    @classmethod
    def _names_are_enough(cls, value: Any) -> Any:
        # `lights: [ceiling, lamp]` is the short form of `[{name: ceiling}, {name: lamp}]`.
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


def build(config: VirtualLightsConfig, context: BuildContext) -> VirtualLights:
    return VirtualLights(
        [
            VirtualLight(
                id=str(index),
                name=light.name,
                mired_min=kelvin_to_mired(max(light.kelvin_min, light.kelvin_max)),
                mired_max=kelvin_to_mired(min(light.kelvin_min, light.kelvin_max)),
            )
            for index, light in enumerate(config.lights, start=1)
        ]
    )


register(
    Backend(
        slot="lights",
        name="virtual",
        config=VirtualLightsConfig,
        build=build,
    )
)
