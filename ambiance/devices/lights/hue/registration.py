"""Philips Hue (API v1) as a backend: a room's lights as a Hue group, and Hue lights as
distractions; both share one `HueBridge` client per bridge, so its rooms share its limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from ambiance.devices.distractions import HueSwitch
from ambiance.devices.lights.hue.bridge import HueBridge
from ambiance.devices.lights.hue.lights import HueLights
from ambiance.devices.lights.hue.pairing import HueCredentials
from ambiance.devices.registry import Backend, BackendConfig, BuildContext, Problem, register


class HueLightsConfig(BackendConfig):
    backend: Literal["hue"]
    bridge: str = Field(min_length=1, description="The bridge's host or host:port.")
    group: str = Field(min_length=1, description="The Hue group (room) name or id.")
    username: SecretStr | None = Field(
        default=None, description="Left out: the one `ambiance pair` stored in the data dir."
    )
    timeout: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="How many times a request the bridge answers busy (error 901, or not JSON)"
        " is sent again at once. A bridge that is away is retried by the room, with the"
        " `devices` backoff.",
    )


class HueDistraction(BackendConfig):
    type: Literal["hue"]
    light: str = Field(min_length=1, description="The Hue light's name or id.")
    bridge: str | None = Field(default=None, description="Default: the room's Hue bridge.")


def _room_bridge(room_config: Any) -> str | None:
    lights = room_config.lights
    return lights.bridge if isinstance(lights, HueLightsConfig) else None


def bridge(context: BuildContext, address: str) -> HueBridge:
    """Return the shared client of a bridge: rooms on one bridge share its limits.

    The first room whose lights are on that bridge gives its username and timeouts;
    without one, the username `ambiance pair` stored and the defaults are used.
    """

    def make() -> HueBridge:
        config = next(
            (
                room.lights
                for room in context.settings.rooms.values()
                if isinstance(room.lights, HueLightsConfig) and room.lights.bridge == address
            ),
            HueLightsConfig(backend="hue", bridge=address, group="-"),
        )
        username = (
            config.username.get_secret_value()
            if config.username is not None
            else HueCredentials(context.data_dir).load(address)
        )
        return HueBridge(
            address,
            username,
            timeout=config.timeout,
            retries=config.retries,
            data_dir=context.data_dir,
            clock=context.clock,
            metrics=context.metrics,
        )

    return context.shared.get(f"hue:{address}", make)


def build_lights(config: HueLightsConfig, context: BuildContext) -> HueLights:
    return HueLights(bridge(context, config.bridge), config.group)


def build_distraction(config: HueDistraction, context: BuildContext) -> HueSwitch:
    address = config.bridge or _room_bridge(context.room_config)
    assert address is not None  # check_distraction said so at load time
    return HueSwitch(bridge(context, address), config.light)


def check_distraction(config: HueDistraction, room_config: Any) -> list[Problem]:
    if config.bridge is None and not _room_bridge(room_config):
        return [Problem("bridge", "required, since the room's lights are not on a Hue bridge")]
    return []


register(
    Backend(
        slot="lights",
        name="hue",
        config=HueLightsConfig,
        build=build_lights,
    )
)
register(
    Backend(
        slot="distraction",
        name="hue",
        config=HueDistraction,
        build=build_distraction,
        check=check_distraction,
    )
)
