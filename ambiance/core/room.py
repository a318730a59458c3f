"""A room: its session, its timer, and the devices that make it look and sound right.

Commands come in from any door (REST, MQTT, CLI) as plain method calls; the engine says
what changed; the director says what the room should be now; the coordinators make the
devices match; and every change goes out on the event bus.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ambiance.config import RoomConfig
from ambiance.core.checkins import Answer
from ambiance.core.coordinator import Coordinator
from ambiance.core.director import RoomTarget, room_target
from ambiance.core.engine import Event as EngineEvent
from ambiance.core.engine import Session
from ambiance.core.events import Event, EventBus
from ambiance.core.people import ProfileBook
from ambiance.core.profiles import ROOM_ONLY_ROUTINE, DayCheck, NotToday, Profile
from ambiance.core.scenes import Library, Routine, Scene, Stage
from ambiance.core.shaping import Shaped, shape
from ambiance.core.status import ACTIVE, HealthStatus, RoomStatus
from ambiance.core.views import (
    DeviceHealth,
    FeedbackGiven,
    RoomHealth,
    RoomView,
    SessionView,
    StateMessage,
)
from ambiance.devices.distractions import DistractionsCoordinator, distractions_view
from ambiance.devices.lights.views import LightsCoordinator, lights_view
from ambiance.devices.music.base import MusicCoordinator, music_view
from ambiance.devices.phones import Phones, iso
from ambiance.errors import AmbianceError, Conflict, NotFound, StorageError
from ambiance.infra import logs
from ambiance.infra.clock import Clock, Timer
from ambiance.infra.metrics import Metrics
from ambiance.infra.store import SessionRecord, Store

log = logging.getLogger(__name__)


def _status(devices: list[DeviceHealth]) -> HealthStatus:
    """A room is ok when every device of it answers."""
    return "ok" if all(device.available for device in devices) else "degraded"


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
        music: MusicCoordinator | None = None,
        phones: Phones | None = None,
        store: Store | None = None,
        profiles: ProfileBook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.config = config
        self.library = library
        self.lights = lights
        self.distractions = distractions
        self.music = music
        self.phones = phones
        self.store = store
        self.profiles = profiles
        self.bus = bus
        self.clock = clock
        self.session: Session | None = None
        self.last_session: SessionView | None = None
        self.scene: str | None = None
        self._target: RoomTarget | None = None
        self._cues = 0  # counts stage changes that ask the music for a chime
        self._counted_status: str | None = ""  # the session status last put in the metrics
        self._timer: Timer | None = None

    @property
    def devices(self) -> dict[str, Coordinator[Any, Any, Any]]:
        found = {"lights": self.lights, "distractions": self.distractions, "music": self.music}
        return {name: c for name, c in found.items() if c is not None}

    @property
    def coordinators(self) -> list[Coordinator[Any, Any, Any]]:
        return list(self.devices.values())

    async def start(self) -> None:
        for device, coordinator in self.devices.items():
            coordinator.on_snapshot = functools.partial(self._snapshot_taken, device)
            coordinator.on_restored = functools.partial(self._restored, device)
            await coordinator.start()

    async def stop(self, restore_timeout: float = 5.0) -> None:
        """Stop. A running session stays in the store, to go on when the service is back;
        without a store it is ended, so that the room is put back first."""
        if self.session is not None and self.store is None:
            log.info("%s: ending the session on shutdown", self.name)
            self.stop_session()
            await asyncio.gather(*(c.wait_synced(restore_timeout) for c in self.coordinators))
        elif self.session is not None:
            log.info(
                "%s: session %s will go on when the service is back", self.name, self.session.id
            )
            try:
                self._persist(self.session)
            except StorageError as exc:  # going away: all that is left is to say so
                log.error(
                    "%s: session %s not saved at shutdown: %s", self.name, self.session.id, exc
                )
        # A session that just ended is not in the store any more as running: let its
        # restore finish, or the room would stay as the session left it.
        restoring = [c for c in self.coordinators if c.restoring]
        await asyncio.gather(*(c.wait_synced(restore_timeout) for c in restoring))
        self._cancel_timer()
        for coordinator in self.coordinators:
            await coordinator.stop()

    def pick_up(self, record: dict[str, Any], snapshots: dict[str, Any]) -> None:
        """Pick up a session the store kept over a restart (or a crash).

        Stages that ran out while the service was down are passed over; a session that
        should have ended meanwhile ends now, and the room is put back.
        """
        with logs.context(room=self.name, session=str(record.get("id") or "")):
            self._pick_up(record, snapshots)

    def _pick_up(self, record: dict[str, Any], snapshots: dict[str, Any]) -> None:
        session = Session.from_record(record, self.clock)
        self.session = session
        for device, coordinator in self.devices.items():
            saved = snapshots.get(device)
            coordinator.resume_session(
                None if saved is None else coordinator.backend.load_snapshot(saved)
            )
        if self.phones is not None:
            self.phones.load()
        log.info(
            "%s: session %s picked up again in stage %s", self.name, session.id, session.stage.name
        )
        self.bus.publish(
            Event("session.picked_up", self.name, self.clock.now(), {"session": session.id})
        )
        events = session.tick()
        # Bring the devices to the stage it is in now (a stage change below does it too).
        if not session.ended and not any(e.kind == "stage.changed" for e in events):
            self._show(self._scene(session.stage.scene), session.stage)
        self._handle(events)

    def put_back(self, snapshots: dict[str, Any], transition: float) -> None:
        """Finish what an ended session left undone before a restart: put the devices back
        as `snapshots` say (its restore was cut short by a crash, or by a stop while the
        device was away), and take the phones off do-not-disturb if they were left on."""
        with logs.context(room=self.name):
            for device, saved in snapshots.items():
                coordinator = self.devices.get(device)
                if coordinator is None:  # removed from the config since: nothing to put back
                    self._restored(device)
                    continue
                log.info("%s: putting the %s back as they were", self.name, device)
                coordinator.resume_session(coordinator.backend.load_snapshot(saved))
                coordinator.end_session(transition)
            if self.phones is not None:
                self.phones.load()
                self.phones.set(False)

    @property
    def title(self) -> str:
        return self.config.title or self.name.replace("-", " ").replace("_", " ").title()

    # --- commands -------------------------------------------------------------------

    def start_spa(
        self,
        routine: str | None = None,
        profile: str | None = None,
        minutes: float | None = None,
        follows: str | None = None,
        today: DayCheck | None = None,
        room_only: bool = False,
    ) -> Session:
        """Spa mode: snapshot the room, then walk the routine from its first stage; with
        `minutes`, the routine fitted to that length (after the profile's own lengths).

        `follows`: taking turns, the ended session of the other person this one comes after;
        `today`: the day's answers (a stop sign refuses the massage: NotToday);
        `room_only`: the relaxing room without a massage (the quiet-room routine).
        """
        with self._work("start"):
            return self._start_spa(routine, profile, minutes, follows, today, room_only)

    def _start_spa(
        self,
        routine: str | None,
        profile: str | None,
        minutes: float | None,
        follows: str | None,
        today: DayCheck | None,
        room_only: bool,
    ) -> Session:
        if self.session is not None:
            raise Conflict(
                f"a session is already running in {self.name!r} "
                f"(stage {self.session.stage.name!r}); stop it first"
            )
        if follows is not None:
            self._check_turn(follows, profile)
        if room_only:
            routine, today = ROOM_ONLY_ROUTINE, None  # no massage: nothing to ask
        written = self.library.routine(routine or self.config.routine)
        shaped = self._shape(written, profile, today, minutes)
        chosen = shaped.routine
        session = Session(
            chosen,
            self.clock,
            profile=profile,
            scenes=shaped.scenes,
            follows=follows,
            fitted=shaped.fitted,
            today_answered=today is not None,
            pressure=shaped.pressure,
        )
        self.session = session
        last = self.last_session
        if follows is not None and last is not None and last.id == follows:
            self.last_session = last.model_copy(update={"followed_by": session.id})
        with logs.context(session=session.id):
            for coordinator in self.coordinators:
                coordinator.begin_session()
            self._handle(session.start())
            args: dict[str, object] = {"routine": chosen.name, "profile": profile}
            if minutes is not None:
                args["minutes"] = minutes
            if follows is not None:
                args["follows"] = follows
            self._log(session, "start", args)
            for device, coordinator in self.devices.items():
                if coordinator.snapshot is not None:
                    # The last session's restore has not reached the device yet, so its
                    # snapshot is still what "as it was" means: keep it as this session's
                    # (a restart then finds it), handed on from the last one.
                    self._restored(device)
                    self._snapshot_taken(device, coordinator.snapshot)
        return session

    def _shape(
        self,
        written: Routine,
        profile: str | None,
        today: DayCheck | None,
        minutes: float | None,
        *,
        nearest: bool = False,
    ) -> Shaped:
        """The routine and scenes for this session (core/shaping.py): at the start, and
        again when today's answers come while getting ready."""
        person: Profile | None = None
        if profile is not None:
            if self.profiles is None:
                raise Conflict("profiles need the store, which this room has not")
            person = self.profiles.get(profile)
        return shape(written, self.library.scenes, person, today, minutes, nearest=nearest)

    def answer_today(self, today: DayCheck) -> None:
        """Today's answers, given while getting ready: the session is shaped again with
        them, exactly as if they had come with the start. A stop sign ends it before the
        massage begins (NotToday: the quiet room, `room_only`, can start next).

        The answers are used here and kept nowhere: not in the command log, the state,
        or a log line (what they changed is in the stages' guidance).
        """
        with self._work("today"):
            session = self._live("answer today's questions")
            with logs.context(session=session.id):
                self._answer_today(session, today)

    def _answer_today(self, session: Session, today: DayCheck) -> None:
        if session.routine.name == ROOM_ONLY_ROUTINE:
            raise Conflict(
                "cannot answer today's questions: this is the quiet room, with no massage, "
                "so there is nothing to ask"
            )
        session.require_getting_ready()  # Conflict naming why not, before anything is done
        try:
            written = self.library.routine(session.routine.name)
        except NotFound:
            raise Conflict(
                f"cannot answer today's questions: the routine {session.routine.name!r} is "
                "not in the library any more; stop and start again"
            ) from None
        minutes = session.fitted.wanted if session.fitted is not None else None
        try:
            shaped = self._shape(written, session.profile, today, minutes, nearest=True)
        except NotToday as exc:
            self._handle(session.not_today())
            self._log(session, "today", {"ended": "not_today"})
            self._save()  # the end is saved before the refusal is told
            raise NotToday(
                f"{exc.message} This session has ended before the massage began; nothing "
                "of it was done.",
                detail={**exc.detail, "session": session.id},
            ) from None
        self._handle(session.reshape(shaped.routine, shaped.scenes, shaped.fitted, shaped.pressure))
        self._log(session, "today", {})

    def _check_turn(self, follows: str, profile: str | None) -> None:
        """A turn comes after an ended session of another person, and only one does."""
        if self.store is None:
            raise Conflict("taking turns needs the store, which this room has not")
        first = self.store.sessions.get(follows)
        if first is None:
            raise NotFound("session", follows)
        if first.active:
            raise Conflict(
                f"session {follows} is still {first.status} in {first.room!r}: "
                "a turn starts after it has ended"
            )
        if first.profile == profile:
            whose = f"for {profile!r}" if profile is not None else "without a profile"
            raise Conflict(
                f"session {follows} was {whose} too: a turn is the other person's "
                "massage, so name their profile"
            )
        after = self.store.sessions.followers([follows]).get(follows)
        if after is not None:
            raise Conflict(f"session {follows} was already followed by session {after}")

    def feedback_given(self, session_id: str, given: FeedbackGiven) -> None:
        """Say that a session of this room took its feedback (every phone hears it)."""
        last = self.last_session
        if last is not None and last.id == session_id:
            self.last_session = last.model_copy(update={"feedback_given": given})
        self.bus.publish(
            Event(
                "session.feedback",
                self.name,
                self.clock.now(),
                {"session": session_id, "feedback": given.id, "by": given.by},
            )
        )

    def pause(self) -> None:
        self._command("pause", {}, lambda s: s.pause())

    def resume(self) -> None:
        self._command("resume", {}, lambda s: s.resume())

    def next(self) -> None:
        self._command("next", {}, lambda s: s.next(), "go to the next stage")

    def previous(self) -> None:
        self._command("previous", {}, lambda s: s.previous(), "go to the previous stage")

    def goto(self, stage: str) -> None:
        self._command("goto", {"stage": stage}, lambda s: s.goto(stage), "go to a stage")

    def set_stage(self, stage: str, remaining: float | None = None) -> None:
        args = {"stage": stage, "remaining": remaining}
        self._command("set_stage", args, lambda s: s.set_stage(stage, remaining), "set the stage")

    def extend(self, seconds: float) -> None:
        args = {"seconds": seconds}
        self._command("extend", args, lambda s: s.extend(seconds), "extend the stage")

    def stop_session(self) -> None:
        self._command("stop", {}, lambda s: s.stop())

    def checkin(self, answer: Answer, checkin_id: str | None = None) -> None:
        """Answer the open pressure check-in; the pressure wording follows at once."""
        args = {"answer": answer, **({"id": checkin_id} if checkin_id is not None else {})}
        self._command(
            "checkin", args, lambda s: s.answer(answer, checkin_id), "answer a pressure check-in"
        )

    def _command(
        self,
        action: str,
        args: dict[str, Any],
        run: Callable[[Session], list[EngineEvent]],
        doing: str | None = None,
    ) -> None:
        with self._work(action):
            session = self._live(doing or action)
            with logs.context(session=session.id):
                self._handle(run(session))
                self._log(session, action, args)

    @contextmanager
    def _work(self, action: str) -> Iterator[None]:
        """A command: logs carry the room; counted and timed (until its events are handled)."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            with logs.context(room=self.name):
                yield
                self._save()
        except AmbianceError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "error"  # a bug, not a refusal: counted, and logged by the door
            raise
        finally:
            if self.metrics is not None:
                self.metrics.commands.inc(room=self.name, action=action, outcome=outcome)
                if outcome == "ok":
                    elapsed = time.perf_counter() - started
                    self.metrics.command_seconds.observe(elapsed, action=action)

    def apply_scene(self, name: str) -> Scene:
        """Show a scene now; during a session it holds until the next stage change."""
        scene = self._scene(name)
        self._show(scene)
        self._sync_phones()
        self.bus.publish(Event("room.scene", self.name, self.clock.now(), {"scene": scene.name}))
        self._save()
        return scene

    # --- views ----------------------------------------------------------------------

    def health(self) -> list[DeviceHealth]:
        devices = [c.health.view() for c in self.coordinators]
        if self.phones is not None and self.phones.phones:
            devices.append(self.phones.health())
        return devices

    @property
    def degraded(self) -> bool:
        return self.health_status == "degraded"

    @property
    def health_status(self) -> HealthStatus:
        return _status(self.health())

    async def settle(self, timeout: float) -> bool:
        """Wait (up to `timeout` each) until every device matches what was asked."""
        results = [await c.wait_synced(timeout) for c in self.coordinators]
        return all(results)

    def state_message(self) -> StateMessage:
        """The room's state in brief, for MQTT and Home Assistant."""
        now = self.clock.now()
        session = self.session
        stage = session.stage if session is not None else None
        stage_left = session.stage_remaining(now) if session is not None else None
        total_left = session.total_remaining(now) if session is not None else None
        return StateMessage(
            room=self.name,
            status=RoomStatus.IDLE if session is None else RoomStatus(session.status),
            session=session.id if session is not None else None,
            routine=session.routine.name if session is not None else None,
            profile=session.profile if session is not None else None,
            stage=stage.name if stage is not None else None,
            stage_title=(stage.title or stage.name) if stage is not None else None,
            stage_index=session.index if session is not None else None,
            stage_remaining=None if stage_left is None else round(stage_left, 1),
            stage_ends_at=iso(now + stage_left) if stage_left is not None else None,
            total_remaining=None if total_left is None else round(total_left, 1),
            ends_at=iso(now + total_left) if total_left is not None else None,
            scene=self.scene,
            dnd=self.phones.on if self.phones is not None else False,
            health=self.health_status,
            at=iso(now) or "",
            checkin=session.checkin_view() if session is not None else None,
        )

    def view(self) -> RoomView:
        health = self.health()
        return RoomView(
            name=self.name,
            title=self.title,
            routine=self.config.routine,
            session=self.session.view() if self.session is not None else None,
            last_session=self.last_session,
            scene=self.scene,
            lights=lights_view(self.lights),
            phones=self.phones.view() if self.phones is not None else [],
            music=music_view(self.music) if self.music is not None else None,
            distractions=(
                distractions_view(self.distractions) if self.distractions is not None else None
            ),
            health=RoomHealth(status=_status(health), devices=health),
        )

    # --- internals ------------------------------------------------------------------

    def _live(self, action: str) -> Session:
        if self.session is None:
            raise Conflict(f"cannot {action}: no session is running in {self.name!r}")
        return self.session

    def _show(self, scene: Scene, stage: Stage | None = None, cue: bool = False) -> None:
        if cue:
            self._cues += 1
        target = room_target(scene, stage, self._cues)
        self._target = target
        self.scene = target.scene
        self.lights.show(target.lights)
        if self.music is not None:
            if target.music is not None:
                self.music.show(target.music)
            elif cue and self.music.desired is not None:
                # A scene without music lets the music play on, but the chime still sounds.
                stage_name = stage.name if stage is not None else None
                self.music.show(replace(self.music.desired, cue=self._cues, stage=stage_name))
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

    def _handle(self, events: list[EngineEvent], *, timer: bool = False) -> None:
        """Act on the engine's events.

        The session is saved at the end of the loop's turn, with the other rooms' changes
        in one transaction. That is before anything reaches a device: a device changes
        only after an await, in a later turn, and the snapshot's own save writes the
        session first.

        A stage change by the `timer` is not saved: it follows from the deadline already
        stored, and a restart's `tick()` walks through the same deadlines. Only the end
        it may bring is. (With many rooms, the timers' writes were a third of the work.)"""
        session = self.session
        for event in events:
            if event.kind == "stage.changed" and session is not None:
                # A soft chime at each stage change tells the giver without a look; not
                # at the start, when the giver is looking anyway.
                cue = event.data["reason"] != "start"
                self._show(self._scene(str(event.data["scene"])), session.stage, cue)
                log.info("%s: stage %s (%s)", self.name, event.stage, event.data["reason"])
            elif event.kind == "session.ended" and session is not None:
                self.last_session = session.view()
                self.session = None
                self.scene = None
                self._target = None
                for coordinator in self.coordinators:
                    coordinator.end_session(session.routine.restore_transition)
                log.info("%s: session %s %s", self.name, session.id, event.data["outcome"])
                if self.metrics is not None:
                    self.metrics.sessions_ended.inc(outcome=str(event.data["outcome"]))
            self.bus.publish(
                Event(
                    event.kind,
                    self.name,
                    event.at,
                    {"session": event.session_id, "stage": event.stage, **event.data},
                )
            )
        self._sync_phones()
        # A check-in asked by the timer is saved: after a restart it is open again, and
        # one already answered is not asked twice.
        asked = any(event.kind.startswith("checkin.") for event in events)
        if session is not None and events and (not timer or session.ended or asked):
            self._persist(session, soon=True)
            if session.ended:
                self._learn_checkins(session)
        self._schedule()
        self._count_sessions()

    def _learn_checkins(self, session: Session) -> None:
        """At the end, the person's profile learns from the check-in answers: in the same
        transaction as the session's end, so a restart never learns them twice or loses
        them (checkins.py says which count; feedback later builds on them)."""
        taught = session.checkins.learned()
        if self.profiles is None or session.profile is None or not taught:
            return
        self.profiles.learn_checkins_soon(session.profile, session.routine, taught)

    def _count_sessions(self) -> None:
        if self.metrics is None:
            return
        status = self.session.status if self.session is not None else None
        if status == self._counted_status:  # most changes are stage changes: nothing new
            return
        self._counted_status = status
        for name in ACTIVE:
            self.metrics.sessions.set(1 if status == name else 0, room=self.name, status=name)

    # --- keeping it -----------------------------------------------------------------

    def _scene(self, name: str) -> Scene:
        """A scene as this session uses it (adapted to the profile), or the library's."""
        session = self.session
        if session is not None and name in session.scenes:
            return session.scenes[name]
        return self.library.scene(name)

    def _save(self) -> None:
        """Write what a command changed now, not at the end of the turn: a command is not
        acknowledged before its change is saved. When it cannot be, `StorageError` reaches
        the door (HTTP 503, MQTT `<room>/error`); the room has changed all the same (the
        person in it is obeyed: a stop still puts the room back), and the writes are kept
        and done once the disk takes them (writebehind.py)."""
        if self.store is not None:
            self.store.flush()

    def _persist(self, session: Session, *, soon: bool = False) -> None:
        if self.store is None:
            return
        if soon:
            self.store.sessions.save_soon(session.id, functools.partial(self._record, session))
        else:
            self.store.sessions.save(self._record(session))

    def live_record(self, session_id: str) -> SessionRecord | None:
        """The record of the session running here now, if `session_id` is it."""
        session = self.session
        if session is None or session.id != session_id:
            return None
        return self._record(session)

    def _record(self, session: Session) -> SessionRecord:
        return SessionRecord(room=self.name, updated_at=self.clock.now(), **session.record())

    def _log(self, session: Session, action: str, args: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.sessions.log_command_soon(session.id, self.clock.now(), action, args)

    def _snapshot_taken(self, device: str, snapshot: Any) -> None:
        session = self.session
        if self.store is None or session is None:
            return
        data = self.devices[device].backend.dump_snapshot(snapshot)
        try:
            self._persist(session)  # the snapshot refers to the session: stored first
            self.store.snapshots.save(session.id, device, data)
        except StorageError:
            # Not saved now (the store's health says why, once): held, after the session's
            # own save, until the disk takes them. The device goes on all the same.
            self._persist(session, soon=True)
            self.store.snapshots.save_soon(session.id, device, data)

    def _restored(self, device: str) -> None:
        if self.store is None:
            return
        try:
            self.store.snapshots.mark_restored(self.name, device, at=self.clock.now())
        except StorageError:  # as for a snapshot: held until the disk takes it
            self.store.snapshots.mark_restored_soon(self.name, device, at=self.clock.now())

    def _schedule(self) -> None:
        self._cancel_timer()
        deadline = self.session.next_deadline() if self.session is not None else None
        if deadline is not None:
            self._timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is None:
            return
        with logs.context(room=self.name, session=self.session.id):
            events = self.session.tick()
            if events:
                self._handle(events, timer=True)
            else:  # woken early (the wall clock moved back): wait for the deadline again
                self._schedule()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
