"""The service: settings, scenes, rooms and their devices, started and stopped together.

Both doors (the HTTP API, and later MQTT) hold one `Ambiance` and call into its rooms.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .clock import Clock, SystemClock
from .config import HueLightsConfig, RoomConfig, Settings, VirtualLightsConfig
from .coordinator import Coordinator
from .errors import ConfigError, NotFound
from .events import EventBus
from .lights.base import LightsBackend, kelvin_to_mired
from .lights.virtual import VirtualLight, VirtualLights
from .room import LightsCoordinator, Room
from .scenes import Library, builtin_scenes_dir, load_library

if TYPE_CHECKING:
    from .lights.hue import HueBridge

log = logging.getLogger(__name__)

__version__ = "0.1.0"


def load_scenes(settings: Settings) -> Library:
    """Load the built-in scenes, then the user's folders (which override by name)."""
    return load_library([builtin_scenes_dir(), *settings.scenes])


def check_rooms(settings: Settings, library: Library) -> None:
    """Raise ConfigError for rooms whose default routine does not exist."""
    problems = [
        f"settings: rooms.{name}.routine: unknown routine {room.routine!r} "
        f"(known: {', '.join(sorted(library.routines))})"
        for name, room in settings.rooms.items()
        if room.routine not in library.routines
    ]
    if problems:
        raise ConfigError(problems)


class Ambiance:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        library: Library | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.bus = EventBus()
        self.library = library
        self.rooms: dict[str, Room] = {}
        self._bridges: dict[str, HueBridge] = {}

    async def start(self) -> None:
        if self.library is None:
            self.library = load_scenes(self.settings)
        check_rooms(self.settings, self.library)
        for name, config in self.settings.rooms.items():
            self.rooms[name] = self._build_room(name, config, self.library)
        for bridge in self._bridges.values():
            await bridge.start()
        for room in self.rooms.values():
            await room.start()
        log.info("ambiance %s: rooms %s", __version__, ", ".join(self.rooms))

    async def stop(self) -> None:
        for room in self.rooms.values():
            await room.stop()
        for bridge in self._bridges.values():
            await bridge.stop()

    async def __aenter__(self) -> Ambiance:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def room(self, name: str) -> Room:
        try:
            return self.rooms[name]
        except KeyError:
            raise NotFound("room", name, known=list(self.rooms)) from None

    def health(self) -> dict[str, Any]:
        rooms = {name: "degraded" if room.degraded else "ok" for name, room in self.rooms.items()}
        return {
            "status": "degraded" if "degraded" in rooms.values() else "ok",
            "version": __version__,
            "rooms": rooms,
        }

    # --- building -------------------------------------------------------------------

    def _build_room(self, name: str, config: RoomConfig, library: Library) -> Room:
        devices = self.settings.devices
        lights: LightsCoordinator = Coordinator(
            name,
            "lights",
            self._lights_backend(config),
            self.bus,
            self.clock,
            retry_initial=devices.retry_initial,
            retry_max=devices.retry_max,
            poll_interval=devices.poll_interval,
        )
        return Room(name, config, library, lights, self.bus, self.clock)

    def _lights_backend(self, config: RoomConfig) -> LightsBackend:
        lights = config.lights
        if isinstance(lights, VirtualLightsConfig):
            return VirtualLights(
                [
                    VirtualLight(
                        id=str(index),
                        name=light.name,
                        mired_min=kelvin_to_mired(max(light.kelvin_min, light.kelvin_max)),
                        mired_max=kelvin_to_mired(min(light.kelvin_min, light.kelvin_max)),
                    )
                    for index, light in enumerate(lights.lights, start=1)
                ]
            )
        assert isinstance(lights, HueLightsConfig)
        from .lights.hue import HueLights  # phue is only imported when a room uses Hue

        return HueLights(self._bridge(lights), lights.group)

    def _bridge(self, config: HueLightsConfig) -> HueBridge:
        """Return the shared client of a bridge: rooms on one bridge share its limits."""
        from .lights.hue import HueBridge, HueCredentials

        bridge = self._bridges.get(config.bridge)
        if bridge is None:
            username = (
                config.username.get_secret_value()
                if config.username is not None
                else HueCredentials(self.settings.data_dir).load(config.bridge)
            )
            bridge = HueBridge(
                config.bridge,
                username,
                timeout=config.timeout,
                retries=config.retries,
                data_dir=self.settings.data_dir,
            )
            self._bridges[config.bridge] = bridge
        return bridge
