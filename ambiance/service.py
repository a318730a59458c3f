"""The service: settings, scenes, rooms and their devices, started and stopped together.

Both doors (the HTTP API, and later MQTT) hold one `Ambiance` and call into its rooms.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ambiance import __version__
from ambiance.config import HueLightsConfig, RoomConfig, Settings, VirtualLightsConfig
from ambiance.core.coordinator import Coordinator, Device, SnapT, StateT, TargetT
from ambiance.core.events import EventBus
from ambiance.core.people import ProfileBook
from ambiance.core.room import DistractionsCoordinator, LightsCoordinator, MusicCoordinator, Room
from ambiance.core.scenes import Library, builtin_scenes_dir, load_library
from ambiance.devices.distractions import (
    DistractionConfig,
    Distractions,
    HueDistraction,
    HueSwitch,
    MqttSwitch,
    Switch,
    as_mqtt,
)
from ambiance.devices.lights.base import LightsBackend, kelvin_to_mired
from ambiance.devices.lights.virtual import VirtualLight, VirtualLights
from ambiance.devices.lights.zigbee2mqtt import Zigbee2MqttLights, Zigbee2MqttLightsConfig
from ambiance.devices.music.base import MpdMusicConfig, MqttMusicConfig, MusicBackend
from ambiance.devices.music.mqtt import MqttMusic
from ambiance.devices.phones import Phones
from ambiance.doors.discovery import Discovery
from ambiance.doors.mqtt_api import MqttApi
from ambiance.errors import ConfigError, NotFound
from ambiance.infra.clock import Clock, SystemClock
from ambiance.infra.metrics import Metrics
from ambiance.infra.mqtt import MqttConnection
from ambiance.infra.store import PendingRestore, SessionRecord, Store

if TYPE_CHECKING:
    from ambiance.devices.lights.hue import HueBridge

log = logging.getLogger(__name__)

# Putting a room back after a restart, when its session's routine cannot be read.
DEFAULT_RESTORE_TRANSITION = 10.0  # seconds, the routines' own default


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
        self.metrics = Metrics(__version__)  # GET /metrics; handed to what counts something
        self.library = library
        self.rooms: dict[str, Room] = {}
        self.store = Store.in_dir(settings.data_dir)
        self.profiles = ProfileBook(self.store, self.clock)
        self.mqtt = MqttConnection(settings.mqtt, self.bus, self.clock, metrics=self.metrics)
        self.mqtt_api = MqttApi(self, self.mqtt)
        self.discovery = Discovery(self, self.mqtt, settings.mqtt.discovery_prefix)
        self._bridges: dict[str, HueBridge] = {}

    async def start(self) -> None:
        if self.library is None:
            self.library = load_scenes(self.settings)
        check_rooms(self.settings, self.library)
        self.store.open()  # ConfigError when it is from a newer ambiance, or not a database
        for name, config in self.settings.rooms.items():
            self.rooms[name] = self._build_room(name, config, self.library)
        await self.mqtt.start()  # connects in the background; a broker that is down is fine
        for bridge in self._bridges.values():
            await bridge.start()
        for room in self.rooms.values():
            await room.start()
        self._pick_up_sessions()
        self._put_back_leftovers()
        await self.mqtt_api.start()
        await self.discovery.start()
        log.info("ambiance %s: rooms %s", __version__, ", ".join(self.rooms))

    async def stop(self) -> None:
        for room in self.rooms.values():
            await room.stop(self.settings.devices.shutdown_timeout)
        await self.discovery.stop()
        await self.mqtt_api.stop()
        for bridge in self._bridges.values():
            await bridge.stop()
        await self.mqtt.stop()
        self.store.close()

    def _pick_up_sessions(self) -> None:
        """Go on with the sessions that were running when the service stopped or crashed."""
        for record in self.store.active_sessions():
            room = self.rooms.get(record.room)
            if room is None:
                log.warning(
                    "session %s was running in room %r, which is no longer configured; it is ended",
                    record.id,
                    record.room,
                )
                ended = {**record.as_dict(), "status": "stopped", "ended_at": self.clock.now()}
                self.store.save_session(SessionRecord(**{**ended, "updated_at": self.clock.now()}))
                continue
            try:
                room.pick_up(record.as_dict(), self.store.snapshots(record.id))
            except Exception:  # one unreadable session must not keep the service down
                log.exception("%s: could not pick up session %s", record.room, record.id)

    def _put_back_leftovers(self) -> None:
        """Put back what ended sessions left changed: a restore cut short by a crash, or by
        a stop while a device was away, is done now (rooms with a session going on keep
        theirs for its end). The phones of the other rooms come off do-not-disturb."""
        pending: dict[str, dict[str, PendingRestore]] = {}
        for leftover in self.store.pending_restores():
            # The oldest per device: the room as it was before the first of them.
            pending.setdefault(leftover.room, {}).setdefault(leftover.device, leftover)
        for name in pending.keys() - self.rooms.keys():
            log.warning("room %r, no longer configured, was not put back after its session", name)
            for device in pending[name]:  # said once: there is nothing to put it back with
                self.store.mark_restored(name, device, at=self.clock.now())
        for name, room in self.rooms.items():
            if room.session is not None:
                continue
            left = pending.get(name, {})
            transitions = [p.transition for p in left.values() if p.transition is not None]
            try:
                room.put_back(
                    {device: p.data for device, p in left.items()},
                    transitions[0] if transitions else DEFAULT_RESTORE_TRANSITION,
                )
            except Exception:  # one unreadable snapshot must not keep the service down
                log.exception("%s: could not put the room back", name)

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

    def current(self, record: SessionRecord) -> SessionRecord:
        """A stored session as it is now: the store is not written at a timer's stage
        change, so a session still running here is taken from its room."""
        room = self.rooms.get(record.room)
        live = room.live_record(record.id) if room is not None else None
        return record if live is None else live

    def health(self) -> dict[str, Any]:
        rooms = {name: "degraded" if room.degraded else "ok" for name, room in self.rooms.items()}
        return {
            "status": "degraded" if "degraded" in rooms.values() else "ok",
            "version": __version__,
            "rooms": rooms,
        }

    # --- building -------------------------------------------------------------------

    def _coordinator(
        self, room: str, device: str, backend: Device[TargetT, StateT, SnapT]
    ) -> Coordinator[TargetT, StateT, SnapT]:
        devices = self.settings.devices
        return Coordinator(
            room,
            device,
            backend,
            self.bus,
            self.clock,
            retry_initial=devices.retry_initial,
            retry_max=devices.retry_max,
            poll_interval=devices.poll_interval,
            metrics=self.metrics,
        )

    def _build_room(self, name: str, config: RoomConfig, library: Library) -> Room:
        lights: LightsCoordinator = self._coordinator(name, "lights", self._lights_backend(config))
        distractions: DistractionsCoordinator | None = None
        if config.distractions:
            switches = [self._switch(config, item) for item in config.distractions]
            distractions = self._coordinator(name, "distractions", Distractions(switches))
        music: MusicCoordinator | None = None
        backend = self._music_backend(name, config)
        if backend is not None:
            music = self._coordinator(name, "music", backend)
        phones = (
            Phones(name, config.phones, self.mqtt, self.clock, self.store)
            if config.phones
            else None
        )
        return Room(
            name,
            config,
            library,
            lights,
            self.bus,
            self.clock,
            distractions=distractions,
            music=music,
            phones=phones,
            store=self.store,
            profiles=self.profiles,
            metrics=self.metrics,
        )

    def _music_backend(self, room: str, config: RoomConfig) -> MusicBackend | None:
        if isinstance(config.music, MpdMusicConfig):
            from ambiance.devices.music.mpd import MpdMusic  # python-mpd2 only when a room uses it

            return MpdMusic(config.music)
        if isinstance(config.music, MqttMusicConfig):
            return MqttMusic(room, self.mqtt, self.clock)
        return None

    def _switch(self, room: RoomConfig, item: DistractionConfig) -> Switch:
        if isinstance(item, HueDistraction):
            address = item.bridge or (
                room.lights.bridge if isinstance(room.lights, HueLightsConfig) else None
            )
            assert address is not None  # the settings check this
            return HueSwitch(self._bridge(address), item.light)
        return MqttSwitch(self.mqtt, as_mqtt(item))

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
        if isinstance(lights, Zigbee2MqttLightsConfig):
            return Zigbee2MqttLights(self.mqtt, lights)
        assert isinstance(lights, HueLightsConfig)
        from ambiance.devices.lights.hue import (
            HueLights,  # phue is only imported when a room uses Hue
        )

        return HueLights(self._bridge(lights.bridge), lights.group)

    def _bridge(self, address: str) -> HueBridge:
        """Return the shared client of a bridge: rooms on one bridge share its limits.

        The first room whose lights are on that bridge gives its username and timeouts;
        without one, the username `ambiance pair` stored and the defaults are used.
        """
        from ambiance.devices.lights.hue import HueBridge, HueCredentials

        bridge = self._bridges.get(address)
        if bridge is None:
            config = next(
                (
                    room.lights
                    for room in self.settings.rooms.values()
                    if isinstance(room.lights, HueLightsConfig) and room.lights.bridge == address
                ),
                HueLightsConfig(backend="hue", bridge=address, group="-"),
            )
            username = (
                config.username.get_secret_value()
                if config.username is not None
                else HueCredentials(self.settings.data_dir).load(address)
            )
            bridge = HueBridge(
                address,
                username,
                timeout=config.timeout,
                retries=config.retries,
                data_dir=self.settings.data_dir,
                metrics=self.metrics,
            )
            self._bridges[address] = bridge
        return bridge
