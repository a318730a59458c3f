"""A room: its session, its timer, and the devices that make it look and sound right.

Commands come in from any door (REST, MQTT, CLI) as plain method calls; the engine says
what changed; the director says what the room should be now; the coordinators make the
devices match; and every change goes out on the event bus.
"""

from __future__ import annotations

import logging
from typing import Any

from .clock import Clock, Timer
from .config import RoomConfig
from .coordinator import Coordinator
from .director import room_target
from .engine import Event as EngineEvent
from .engine import Session
from .errors import Conflict
from .events import Event, EventBus
from .lights.base import LightState, LightTarget, Snapshot, lights_view
from .scenes import Library, Scene

log = logging.getLogger(__name__)

LightsCoordinator = Coordinator[LightTarget, list[LightState], Snapshot]


class Room:
    def __init__(
        self,
        name: str,
        config: RoomConfig,
        library: Library,
        lights: LightsCoordinator,
        bus: EventBus,
        clock: Clock,
    ) -> None:
        self.name = name
        self.config = config
        self.library = library
        self.lights = lights
        self.bus = bus
        self.clock = clock
        self.session: Session | None = None
        self.last_session: dict[str, Any] | None = None
        self.scene: str | None = None
        self._timer: Timer | None = None

    async def start(self) -> None:
        await self.lights.start()

    async def stop(self, restore_timeout: float = 5.0) -> None:
        """Stop; a session still running is ended so the room is put back first."""
        if self.session is not None:
            log.info("%s: ending the session on shutdown", self.name)
            self.stop_session()
            await self.lights.wait_synced(restore_timeout)
        self._cancel_timer()
        await self.lights.stop()

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
        self.lights.begin_session()
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
        self.bus.publish(Event("room.scene", self.name, self.clock.now(), {"scene": scene.name}))
        return scene

    # --- views ----------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        return not self.lights.health.available

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
            "health": {
                "status": "degraded" if self.degraded else "ok",
                "devices": [self.lights.health.view()],
            },
        }

    # --- internals ------------------------------------------------------------------

    def _live(self, action: str) -> Session:
        if self.session is None:
            raise Conflict(f"cannot {action}: no session is running in {self.name!r}")
        return self.session

    def _show(self, scene: Scene) -> None:
        target = room_target(scene)
        self.scene = target.scene
        self.lights.show(target.lights)

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
                self.lights.end_session(session.routine.restore_transition)
                log.info("%s: session %s %s", self.name, session.id, event.data["outcome"])
            self.bus.publish(
                Event(
                    event.kind,
                    self.name,
                    event.at,
                    {"session": event.session_id, "stage": event.stage, **event.data},
                )
            )
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
