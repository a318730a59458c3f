"""The service: settings, scenes, rooms and their devices, started and stopped together.

The HTTP API holds one `Ambiance`; the MQTT doors see it through the narrow `Core`
(core/facade.py) that it meets.
"""

from __future__ import annotations

import functools
import logging
import socket
from pathlib import Path
from types import TracebackType

from ambiance import __version__
from ambiance.config import RoomConfig, Settings
from ambiance.core.coordinator import Coordinator, Device, SnapT, StateT, TargetT
from ambiance.core.events import EventBus
from ambiance.core.health import Availability
from ambiance.core.people import FeedbackTaken, ProfileBook
from ambiance.core.profiles import Feedback
from ambiance.core.room import Room
from ambiance.core.scenes import Library, builtin_scenes_dir, load_library
from ambiance.core.status import Status
from ambiance.core.views import Health
from ambiance.devices.distractions import Distractions, DistractionsCoordinator
from ambiance.devices.lights.views import LightsCoordinator
from ambiance.devices.music.base import MusicCoordinator
from ambiance.devices.phones import Phones
from ambiance.devices.registry import BuildContext, SharedClients, registry
from ambiance.doors.base import Door
from ambiance.doors.discovery import Discovery
from ambiance.doors.mqtt_api import MqttApi
from ambiance.errors import AmbianceError, ConfigError, NotFound, StorageError, brief
from ambiance.infra import datadir
from ambiance.infra.clock import Clock, SystemClock, Timer
from ambiance.infra.metrics import Metrics
from ambiance.infra.mqtt import MqttConnection
from ambiance.infra.mqtt.client import tls_problems
from ambiance.infra.store import PendingRestore, SessionRecord, Store, Tokens, checks
from ambiance.infra.store.database import DB_NAME, Database

log = logging.getLogger(__name__)

# Putting a room back after a restart, when its session's routine cannot be read.
DEFAULT_RESTORE_TRANSITION = 10.0  # seconds, the routines' own default
STORE_RETRY = 2.0  # seconds between tries of a store that failed, until it writes again
BACKUP_INTERVAL = 24 * 3600.0  # a backup at start, then one a day while running


def load_scenes(settings: Settings) -> Library:
    """Load the built-in scenes, then the user's folders (which override by name)."""
    return load_library([builtin_scenes_dir(), *settings.scenes])


def check_rooms(settings: Settings, library: Library) -> None:
    """Raise ConfigError for rooms whose default routine does not exist."""
    problems = [
        f"settings: rooms.{name}.routine: unknown routine {brief(room.routine)} "
        f"(known: {', '.join(sorted(library.routines))})"
        for name, room in settings.rooms.items()
        if room.routine not in library.routines
    ]
    if problems:
        raise ConfigError(problems)


def preflight(settings: Settings, library: Library) -> None:
    """Everything `ambiance check` checks and `ambiance serve` checks before it starts:
    the rooms' routines, the address to listen on, the MQTT TLS files, the data dir, the
    database, the token file and what building the rooms reads (the Hue usernames).
    ConfigError with every problem found."""
    problems: list[str] = []
    try:
        check_rooms(settings, library)
    except ConfigError as exc:
        problems += exc.problems
    problems += _listen_problems(settings.host)
    problems += tls_problems(settings.mqtt)
    found = datadir.problems(settings.data_dir)
    problems += found
    if not found:
        for check in (
            functools.partial(checks.inspect, settings.data_dir / DB_NAME),
            Tokens(settings.data_dir).check,
            Ambiance(settings, library=library).build_rooms,
        ):
            try:
                check()
            except ConfigError as exc:
                problems += exc.problems
            except AmbianceError as exc:
                problems.append(exc.message)
    if problems:
        raise ConfigError(problems)


def _listen_problems(host: str) -> list[str]:
    """Can the service listen on `host`? A free port of it is bound and let go at once
    (whether the configured port is free is for `serve` to find: another program may hold
    it only for now)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [
            f"settings: host: cannot listen on {host!r} ({reason}): give an address of this "
            "machine (127.0.0.1 for it alone, 0.0.0.0 for the network)"
        ]
    return []


class _StoreWatch:
    """The store's health (an `Availability`: logged once on a failure, once on the
    recovery) and, while a fault that can pass lasts (a full or read-only disk, a lock),
    a write tried every `STORE_RETRY` seconds, so that health recovers by itself once the
    disk can be written again. Damage does not pass: it waits for a restore."""

    def __init__(self, db: Database, health: Availability, clock: Clock) -> None:
        self.db = db
        self.health = health
        self.clock = clock
        self.running = False  # probes only while the service runs
        self._timer: Timer | None = None

    def failed(self, exc: BaseException) -> None:
        self.health.failed(exc)
        damaged = isinstance(exc, StorageError) and exc.kind == "damaged"
        if self.running and self._timer is None and not damaged:
            # On the wall clock, as the rooms' timers: a fake clock moves it in tests.
            self._timer = self.clock.call_at(self.clock.now() + STORE_RETRY, self._probe)

    def ok(self) -> None:
        self.health.ok()

    def stop(self) -> None:
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _probe(self) -> None:
        self._timer = None
        if self.running:
            self.db.probe()  # a failure arms the next try (failed())


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
        self.store_watch = _StoreWatch(
            self.store.db,
            Availability("", "store", "sqlite", self.bus, self.clock, self.metrics),
            self.clock,
        )
        self.store.db.monitor = self.store_watch
        self._backup_timer: Timer | None = None
        self.profiles = ProfileBook(self.store, self.clock)
        self.mqtt = MqttConnection(settings.mqtt, self.bus, self.clock, metrics=self.metrics)
        self.mqtt_api = MqttApi(self, self.mqtt)
        self.discovery = Discovery(self, self.mqtt)
        self.doors: list[Door] = [self.mqtt_api, self.discovery]  # started in this order
        # Clients several rooms share (the MQTT connection, each Hue bridge): started before
        # the rooms, in the order they were made, and stopped after them.
        self.shared = SharedClients()
        self.shared.add("mqtt", self.mqtt)

    async def start(self) -> None:
        """Start everything; an error (a refusal: ConfigError, StorageError) stops what
        had started before it is raised."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.library is None:
            self.library = load_scenes(self.settings)
        check_rooms(self.settings, self.library)
        # The data dir must take a write before anything is acknowledged; the database is
        # checked (and refused with the backup to restore), then backed up (backups.py).
        datadir.prepare(self.settings.data_dir)
        self.store.open(backup=True)
        self.store_watch.running = True
        self._backup_timer = self.clock.call_at(
            self.clock.now() + BACKUP_INTERVAL, self._daily_backup
        )
        self.build_rooms()
        # MQTT connects in the background (a broker that is down is fine), then the bridges.
        await self.shared.start()
        for room in self.rooms.values():
            await room.start()
        self._pick_up_sessions()
        self._put_back_leftovers()
        for door in self.doors:
            await door.start()
        log.info("ambiance %s: rooms %s", __version__, ", ".join(self.rooms))

    async def stop(self) -> None:
        for room in self.rooms.values():
            await room.stop(self.settings.devices.shutdown_timeout)
        for door in reversed(self.doors):
            await door.stop()
        await self.shared.stop()
        if self._backup_timer is not None:
            self._backup_timer.cancel()
            self._backup_timer = None
        self.store_watch.stop()
        self.store.close()

    def build_rooms(self) -> None:
        """Build every room and its devices (nothing starts: constructors only assign)."""
        assert self.library is not None
        for name, config in self.settings.rooms.items():
            self.rooms[name] = self._build_room(name, config, self.library)

    def _daily_backup(self) -> None:
        self._backup_timer = self.clock.call_at(
            self.clock.now() + BACKUP_INTERVAL, self._daily_backup
        )
        try:
            self.store.db.backup()
        except StorageError as exc:  # the store's health says so (and logs it once)
            log.debug("store: no backup today: %s", exc)

    def _pick_up_sessions(self) -> None:
        """Go on with the sessions that were running when the service stopped or crashed."""
        for record in self.store.sessions.active():
            room = self.rooms.get(record.room)
            if room is None:
                log.warning(
                    "session %s was running in room %r, which is no longer configured; it is ended",
                    record.id,
                    record.room,
                )
                ended = {**record.as_dict(), "status": Status.STOPPED, "ended_at": self.clock.now()}
                self.store.sessions.save(SessionRecord(**{**ended, "updated_at": self.clock.now()}))
                continue
            try:
                room.pick_up(record.as_dict(), self.store.snapshots.for_session(record.id))
            except Exception:  # one unreadable session must not keep the service down
                log.exception("%s: could not pick up session %s", record.room, record.id)

    def _put_back_leftovers(self) -> None:
        """Put back what ended sessions left changed: a restore cut short by a crash, or by
        a stop while a device was away, is done now (rooms with a session going on keep
        theirs for its end). The phones of the other rooms come off do-not-disturb."""
        pending: dict[str, dict[str, PendingRestore]] = {}
        for leftover in self.store.snapshots.pending_restores():
            # The oldest per device: the room as it was before the first of them.
            pending.setdefault(leftover.room, {}).setdefault(leftover.device, leftover)
        for name in pending.keys() - self.rooms.keys():
            log.warning("room %r, no longer configured, was not put back after its session", name)
            for device in pending[name]:  # said once: there is nothing to put it back with
                self.store.snapshots.mark_restored(name, device, at=self.clock.now())
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

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def version(self) -> str:
        return __version__

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

    def give_feedback(self, record: SessionRecord, feedback: Feedback) -> FeedbackTaken:
        """Keep a session's feedback (once: `AlreadyGiven` otherwise) and let its profile
        learn; the session's room then tells every phone that it was given."""
        taken = self.profiles.feedback(record, feedback)
        room = self.rooms.get(record.room)
        if room is not None:
            room.feedback_given(record.id, taken.given)
        return taken

    def health(self) -> Health:
        rooms = {name: room.health_status for name, room in self.rooms.items()}
        store = self.store_watch.health.view()
        return Health(
            status="degraded" if "degraded" in rooms.values() or not store.available else "ok",
            version=__version__,
            rooms=rooms,
            store=store,
        )

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
        context = BuildContext(
            room=name,
            room_config=config,
            settings=self.settings,
            data_dir=self.settings.data_dir,
            mqtt=self.mqtt,
            clock=self.clock,
            metrics=self.metrics,
            shared=self.shared,
        )
        lights: LightsCoordinator = self._coordinator(
            name, "lights", registry.build("lights", config.lights, context)
        )
        distractions: DistractionsCoordinator | None = None
        if config.distractions:
            switches = [
                registry.build("distraction", item, context) for item in config.distractions
            ]
            distractions = self._coordinator(name, "distractions", Distractions(switches))
        music: MusicCoordinator | None = None
        backend = registry.build("music", config.music, context)
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
