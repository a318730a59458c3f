"""A room: its session, its timer, and the devices that make it look and sound right.

Commands come in from any door (REST, MQTT, CLI) as plain method calls; the engine says
what changed; the director says what the room should be now; the coordinators make the
devices match; and every change goes out on the event bus.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .clock import Clock, Timer
from .config import RoomConfig
from .coordinator import Coordinator
from .director import RoomTarget, room_target
from .engine import Event as EngineEvent
from .engine import Session
from .errors import Conflict
from .events import Event, EventBus
from .lights.base import LightState, LightTarget, Snapshot, lights_view
from .phones import Phones, iso
from .scenes import Library, Scene

log = logging.getLogger(__name__)

LightsCoordinator = Coordinator[LightTarget, list[LightState], Snapshot]
# Target: True = switched off; state: each switch; snapshot: the names that were on.
DistractionsCoordinator = Coordinator[bool, list[dict[str, Any]], frozenset[str]]


class Room:
    def __init__(
        self,
        name: str,
        config: RoomConfig,
        library: Library,
        lights: LightsCoordinator,
        bus: EventBus,
        clock: Clock,
        *,
        distractions: DistractionsCoordinator | None = None,
        phones: Phones | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.library = library
        self.lights = lights
        self.distractions = distractions
        self.phones = phones
        self.bus = bus
        self.clock = clock
        self.session: Session | None = None
        self.last_session: dict[str, Any] | None = None
        self.scene: str | None = None
        self._target: RoomTarget | None = None
        self._timer: Timer | None = None

    @property
    def coordinators(self) -> list[Coordinator[Any, Any, Any]]:
        return [c for c in (self.lights, self.distractions) if c is not None]

    async def start(self) -> None:
        for coordinator in self.coordinators:
            await coordinator.start()

    async def stop(self, restore_timeout: float = 5.0) -> None:
        """Stop; a session still running is ended so the room is put back first."""
        if self.session is not None:
            log.info("%s: ending the session on shutdown", self.name)
            self.stop_session()
            await asyncio.gather(*(c.wait_synced(restore_timeout) for c in self.coordinators))
        self._cancel_timer()
        for coordinator in self.coordinators:
            await coordinator.stop()

    @property
    def title(self) -> str:
        return self.config.title or self.name.replace("-", " ").replace("_", " ").title()

    # --- commands -------------------------------------------------------------------

    def start_spa(self, routine: str | None = None, profile: str | None = None) -> Session:
        """Spa mode: snapshot the room, then walk the routine from its first stage."""
        if self.session is not None:
            raise Conflict(
                f"a session is already running in {self.name!r} "
                f"(stage {self.session.stage.name!r}); stop it first"
            )
        chosen = self.library.routine(routine or self.config.routine)
        session = Session(chosen, self.clock, profile=profile)
        self.session = session
        for coordinator in self.coordinators:
            coordinator.begin_session()
        self._handle(session.start())
        return session

    def pause(self) -> None:
        self._handle(self._live("pause").pause())

    def resume(self) -> None:
        self._handle(self._live("resume").resume())

    def next(self) -> None:
        self._handle(self._live("go to the next stage").next())

    def previous(self) -> None:
        self._handle(self._live("go to the previous stage").previous())

    def goto(self, stage: str) -> None:
        self._handle(self._live("go to a stage").goto(stage))

    def set_stage(self, stage: str, remaining: float | None = None) -> None:
        self._handle(self._live("set the stage").set_stage(stage, remaining))

    def extend(self, seconds: float) -> None:
        self._handle(self._live("extend the stage").extend(seconds))

    def stop_session(self) -> None:
        self._handle(self._live("stop").stop())

    def apply_scene(self, name: str) -> Scene:
        """Show a scene now; during a session it holds until the next stage change."""
        scene = self.library.scene(name)
        self._show(scene)
        self._sync_phones()
        self.bus.publish(Event("room.scene", self.name, self.clock.now(), {"scene": scene.name}))
        return scene

    # --- views ----------------------------------------------------------------------

    def health(self) -> list[dict[str, Any]]:
        devices = [c.health.view() for c in self.coordinators]
        if self.phones is not None and self.phones.phones:
            devices.append({**self.phones.mqtt.health.view(), "device": "phones"})
        return devices

    @property
    def degraded(self) -> bool:
        return not all(device["available"] for device in self.health())

    async def settle(self, timeout: float) -> bool:
        """Wait (up to `timeout` each) until every device matches what was asked."""
        results = [await c.wait_synced(timeout) for c in self.coordinators]
        return all(results)

    def state_message(self) -> dict[str, Any]:
        """The room's state in brief, for MQTT and Home Assistant."""
        now = self.clock.now()
        session = self.session
        stage = session.stage if session is not None else None
        stage_left = session.stage_remaining(now) if session is not None else None
        total_left = session.total_remaining(now) if session is not None else None
        return {
            "room": self.name,
            "status": session.status.value if session is not None else "idle",
            "session": session.id if session is not None else None,
            "routine": session.routine.name if session is not None else None,
            "profile": session.profile if session is not None else None,
            "stage": stage.name if stage is not None else None,
            "stage_title": (stage.title or stage.name) if stage is not None else None,
            "stage_index": session.index if session is not None else None,
            "stage_remaining": None if stage_left is None else round(stage_left, 1),
            "stage_ends_at": iso(now + stage_left) if stage_left is not None else None,
            "total_remaining": None if total_left is None else round(total_left, 1),
            "ends_at": iso(now + total_left) if total_left is not None else None,
            "scene": self.scene,
            "dnd": self.phones.on if self.phones is not None else False,
            "health": "degraded" if self.degraded else "ok",
            "at": iso(now),
        }

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "routine": self.config.routine,
            "session": self.session.view() if self.session is not None else None,
            "last_session": self.last_session,
            "scene": self.scene,
            "lights": {
                "backend": self.lights.backend.kind,
                "synced": self.lights.synced,
                "restoring": self.lights.restoring,
                **lights_view(self.lights.state, self.lights.desired),
                "health": self.lights.health.view(),
            },
            "phones": self.phones.view() if self.phones is not None else [],
            "distractions": (
                {
                    "synced": self.distractions.synced,
                    "off": bool(self.distractions.desired),
                    "devices": self.distractions.state or [],
                }
                if self.distractions is not None
                else None
            ),
            "health": {
                "status": "degraded" if self.degraded else "ok",
                "devices": self.health(),
            },
        }

    # --- internals ------------------------------------------------------------------

    def _live(self, action: str) -> Session:
        if self.session is None:
            raise Conflict(f"cannot {action}: no session is running in {self.name!r}")
        return self.session

    def _show(self, scene: Scene) -> None:
        target = room_target(scene)
        self._target = target
        self.scene = target.scene
        self.lights.show(target.lights)
        # During a session distractions stay off unless a scene says `distractions: on`.
        session_wants_off = self.session is not None and target.distractions is not True
        if self.distractions is not None and session_wants_off:
            self.distractions.show(True)

    def _sync_phones(self) -> None:
        """Phones are on do-not-disturb during a session unless its scene says `dnd: false`."""
        if self.phones is None:
            return
        session = self.session
        if session is None:
            self.phones.set(False)
            return
        wanted = self._target is None or self._target.dnd is not False
        left = session.total_remaining(self.clock.now())
        until = self.clock.now() + left if left is not None else None
        self.phones.set(wanted, until=until, session=session.id)

    def _handle(self, events: list[EngineEvent]) -> None:
        session = self.session
        for event in events:
            if event.kind == "stage.changed":
                self._show(self.library.scene(str(event.data["scene"])))
                log.info("%s: stage %s (%s)", self.name, event.stage, event.data["reason"])
            elif event.kind == "session.ended" and session is not None:
                self.last_session = session.view()
                self.session = None
                self.scene = None
                self._target = None
                for coordinator in self.coordinators:
                    coordinator.end_session(session.routine.restore_transition)
                log.info("%s: session %s %s", self.name, session.id, event.data["outcome"])
            self.bus.publish(
                Event(
                    event.kind,
                    self.name,
                    event.at,
                    {"session": event.session_id, "stage": event.stage, **event.data},
                )
            )
        self._sync_phones()
        self._schedule()

    def _schedule(self) -> None:
        self._cancel_timer()
        deadline = self.session.next_deadline() if self.session is not None else None
        if deadline is not None:
            self._timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is None:
            return
        events = self.session.tick()
        if events:
            self._handle(events)
        else:  # woken early (the wall clock moved back): wait for the deadline again
            self._schedule()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
