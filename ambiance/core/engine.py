"""The session state machine: which stage it is, and until when.

Pure: no I/O, no asyncio. Time comes from an injected clock, and every command returns
the events it caused. Deadlines are wall-clock epoch seconds, so a stored session can be
picked up again after a restart and catch up on the stages it missed.

Commands by state (anything else raises Conflict):

    running  pause, next, previous, goto, set_stage, extend (timed stage), answer, stop, tick
    paused   resume, next, previous, goto, set_stage, extend (timed stage), answer, stop, tick
    ended    nothing: the session is over

Getting ready (the first stage, untimed, before the massage has begun: `getting_ready`)
also takes `reshape` (today's answers shaped the routine anew) and `not_today` (a stop
sign among them: it ends with nothing of the massage done).

Pressure check-ins (checkins.py) fall due in the stage's own time, the seconds it has
actually run (`stage_time`: pauses do not count), so they follow a stage fitted to
another length and wait through a pause. `tick()` asks them; `answer()` takes the answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ambiance.core.checkins import GUIDANCE as CHECKIN_GUIDANCE
from ambiance.core.checkins import Answer, Checkins, dump_pressure, load_pressure
from ambiance.core.fitting import Fitted
from ambiance.core.profiles import DAY_QUESTIONS, StagePressure
from ambiance.core.scenes import Routine, Scene, Stage
from ambiance.core.status import ENDED, Status
from ambiance.core.views import (
    CheckinView,
    DayQuestion,
    GuidanceView,
    PlannedCheckin,
    SessionView,
    StageView,
    TodayView,
    stages_reached,
)
from ambiance.errors import Conflict, InvalidInput, NotFound
from ambiance.infra.clock import Clock

MAX_EXTEND = 3600.0
# A check-in falls due when the stage's time reaches it: sums of floats may miss that by a
# rounding error, and a timer that fires just short of it would be set again for the past.
_DUE_SLACK = 1e-6


class Reason(StrEnum):
    """Why the stage changed or the session ended."""

    START = "start"
    TIMER = "timer"
    NEXT = "next"
    PREVIOUS = "previous"
    GOTO = "goto"
    SET = "set"  # another app set the stage explicitly
    STOP = "stop"
    NOT_TODAY = "not_today"  # a stop sign among today's answers, while getting ready


@dataclass(frozen=True)
class Event:
    # session.started, stage.changed, session.paused, ... session.ended; checkin.asked,
    # checkin.answered, checkin.dropped
    kind: str
    session_id: str
    at: float
    stage: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """One massage session in one room, walking the stages of a routine."""

    routine: Routine
    clock: Clock
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    profile: str | None = None
    scenes: dict[str, Scene] = field(default_factory=dict)  # adapted to the profile
    fitted: Fitted | None = None  # the routine was fitted to a length asked for
    status: Status = Status.RUNNING
    index: int = 0
    started_at: float = 0.0
    stage_started_at: float = 0.0
    deadline: float | None = None  # wall clock; None while paused or in an untimed stage
    paused_remaining: float | None = None  # seconds left in the stage when paused
    ended_at: float | None = None
    follows: str | None = None  # the session this one took turns after (its id)
    # The stages it got to, in the order first entered: what feedback may speak of.
    reached: list[str] = field(default_factory=list)
    # Today's questions were answered (at the start or while getting ready); the answers
    # themselves are kept nowhere.
    today_answered: bool = False
    routine_version: int = 0  # counts the changes of `routine` (for the store)
    end_reason: str | None = None  # why it ended (a Reason), while the room shows it
    # Each hands-on stage's pressure guidance per level (profiles.pressure_choices):
    # what a check-in answer moves between. Kept with its routine; worked out again only
    # when today's answers shape the session anew while getting ready (reshape).
    pressure: dict[str, StagePressure] = field(default_factory=dict)
    # The stage's own time: seconds run before `run_since` (wall clock; None while paused).
    stage_run: float = 0.0
    run_since: float | None = None
    checkins: Checkins = field(init=False)

    def __post_init__(self) -> None:
        self.checkins = Checkins.of(self.routine, self.pressure)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> list[Event]:
        """Begin at the first stage."""
        now = self.clock.now()
        self.started_at = now
        events = [self._event("session.started", now, routine=self.routine.name)]
        events += self._enter(0, now, Reason.START)
        return events

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def stage(self) -> Stage:
        return self.routine.stages[self.index]

    @property
    def getting_ready(self) -> bool:
        """In the first stage, untimed, and the massage not begun: today's questions are
        asked now (a stage gone back to after the massage began is not getting ready)."""
        first = self.routine.stages[0]
        started = self.index != 0 or self.reached != [first.name]
        return not self.ended and not first.timed and not started

    def next_deadline(self) -> float | None:
        """Return when `tick()` next has something to do, if ever: the stage's end, or
        its next check-in."""
        if self.status is not Status.RUNNING:
            return None
        due = None
        at = self.checkins.next_at(self.stage.name)
        if at is not None and self.run_since is not None:
            due = self.run_since + max(0.0, at - self.stage_run)
        found = [when for when in (self.deadline, due) if when is not None]
        return min(found) if found else None

    def stage_time(self, now: float) -> float:
        """Seconds the stage has actually run (a pause stops it)."""
        running = 0.0 if self.run_since is None else max(0.0, now - self.run_since)
        return self.stage_run + running

    # --- commands -------------------------------------------------------------------

    def pause(self) -> list[Event]:
        self._require(Status.RUNNING, "pause", "it is paused already")
        now = self.clock.now()
        self.paused_remaining = None if self.deadline is None else max(0.0, self.deadline - now)
        self.deadline = None
        self.stage_run = self.stage_time(now)
        self.run_since = None
        self.status = Status.PAUSED
        return [self._event("session.paused", now, remaining=self.paused_remaining)]

    def resume(self) -> list[Event]:
        self._require(Status.PAUSED, "resume", "it is not paused")
        now = self.clock.now()
        self.status = Status.RUNNING
        if self.paused_remaining is not None:
            self.deadline = now + self.paused_remaining
        self.paused_remaining = None
        self.run_since = now
        return [self._event("session.resumed", now, remaining=self.stage_remaining(now))]

    def next(self) -> list[Event]:
        """Go to the next stage; after the last one the session finishes."""
        self._require_live("next")
        now = self.clock.now()
        if self.index + 1 >= len(self.routine.stages):
            return self._end(now, Status.FINISHED, Reason.NEXT)
        return self._enter(self.index + 1, now, Reason.NEXT)

    def previous(self) -> list[Event]:
        """Go back a stage; in the first stage, start it again."""
        self._require_live("previous")
        return self._enter(max(0, self.index - 1), self.clock.now(), Reason.PREVIOUS)

    def goto(self, stage: str) -> list[Event]:
        self._require_live("go to a stage")
        index = self._index_of(stage)
        return self._enter(index, self.clock.now(), Reason.GOTO)

    def set_stage(self, stage: str, remaining: float | None = None) -> list[Event]:
        """Follow another app's lead: it is now `stage`, with `remaining` seconds left."""
        self._require_live("set the stage")
        if remaining is not None and not 0 < remaining <= 24 * 3600:
            raise InvalidInput("remaining must be more than 0 seconds and at most 24 hours")
        index = self._index_of(stage)
        return self._enter(index, self.clock.now(), Reason.SET, remaining=remaining)

    def extend(self, seconds: float) -> list[Event]:
        """Give the current stage `seconds` more."""
        self._require_live("extend the stage")
        if not 0 < seconds <= MAX_EXTEND:
            raise InvalidInput(f"extend by more than 0 and at most {MAX_EXTEND:.0f} seconds")
        now = self.clock.now()
        if self.deadline is not None:
            self.deadline += seconds
        elif self.paused_remaining is not None:
            self.paused_remaining += seconds
        else:
            raise Conflict(
                f"stage {self.stage.name!r} is untimed: it waits for you; say next when ready"
            )
        return [self._event("stage.extended", now, by=seconds, remaining=self.stage_remaining(now))]

    def answer(self, answer: Answer, checkin: str | None = None) -> list[Event]:
        """Answer the open check-in (`checkin`: its id, to be sure it is that one); the
        pressure of this stage and the later ones follows (checkins.py)."""
        self._require_live("answer a check-in")
        now = self.clock.now()
        given = self.checkins.answer(answer, now, self.routine.stages[self.index :], checkin)
        return [
            self._event(
                "checkin.answered",
                now,
                id=given.id,
                answer=answer,
                level=given.level,
                held=given.held,
                moved=list(given.moved),
            )
        ]

    def stop(self) -> list[Event]:
        """End the session early."""
        self._require_live("stop")
        return self._end(self.clock.now(), Status.STOPPED, Reason.STOP)

    def reshape(
        self,
        routine: Routine,
        scenes: dict[str, Scene],
        fitted: Fitted | None,
        pressure: dict[str, StagePressure],
    ) -> list[Event]:
        """While getting ready: go on with `routine` (the same first stage, shaped anew by
        today's answers), its check-ins planned anew and their pressure levels within
        today's caps (nothing has been asked yet: the first stage asks none)."""
        self.require_getting_ready()
        if routine.stages[0].name != self.stage.name:
            raise ValueError("a reshaped routine keeps its first stage")
        now = self.clock.now()
        self.routine = routine
        self.scenes = scenes
        self.fitted = fitted
        self.pressure = pressure
        self.checkins = Checkins.of(routine, pressure)
        self.today_answered = True
        self.routine_version += 1
        return [
            self._event(
                "session.adapted", now, reason="today", stages=[s.name for s in routine.stages]
            )
        ]

    def not_today(self) -> list[Event]:
        """While getting ready: end before the massage, for a stop sign among today's answers."""
        self.require_getting_ready()
        self.today_answered = True
        return self._end(self.clock.now(), Status.STOPPED, Reason.NOT_TODAY)

    def tick(self) -> list[Event]:
        """Move past every deadline that has passed (several, after a long gap)."""
        events: list[Event] = []
        now = self.clock.now()
        while self.status is Status.RUNNING and self.deadline is not None and now >= self.deadline:
            # The next stage began at the deadline, not now: after a gap the time left
            # is still right, and stages that ran out meanwhile are passed over.
            at = self.deadline
            if self.index + 1 >= len(self.routine.stages):
                events += self._end(at, Status.FINISHED, Reason.TIMER)
            else:
                events += self._enter(self.index + 1, at, Reason.TIMER)
        # Only in the stage it is in now: one passed over meanwhile has nobody to ask.
        if self.status is Status.RUNNING:
            events += self._ask_due(now)
        return events

    # --- keeping it ------------------------------------------------------------------

    def record(self) -> dict[str, Any]:
        """Everything needed to pick this session up again after a restart."""
        # Dumped at each call (about 8 µs), not kept: a session is saved only at its start,
        # its commands and its end, and a kept copy was some 30 objects per session for
        # the garbage collector to walk, which lengthened its full passes with many rooms.
        return {
            "id": self.id,
            "routine": self.routine.name,
            "routine_data": {
                "routine": self.routine.model_dump(mode="json"),
                "scenes": {n: s.model_dump(mode="json") for n, s in self.scenes.items()},
                **({"fitted": self.fitted.dump()} if self.fitted is not None else {}),
                **({"today_answered": True} if self.today_answered else {}),
                **({"pressure": dump_pressure(self.pressure)} if self.pressure else {}),
            },
            "profile": self.profile,
            "status": self.status,
            "index": self.index,
            "started_at": self.started_at,
            "stage_started_at": self.stage_started_at,
            "deadline": self.deadline,
            "paused_remaining": self.paused_remaining,
            "ended_at": self.ended_at,
            "reached": list(self.reached),
            "follows": self.follows,
            "routine_version": self.routine_version,
            "checkins": {
                **self.checkins.dump(),
                "stage_run": self.stage_run,
                "run_since": self.run_since,
            },
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], clock: Clock) -> Session:
        """Rebuild a session from `record()`; `tick()` then catches up with the clock."""
        data = record["routine_data"]
        routine = Routine.model_validate(data["routine"])
        index = min(int(record["index"]), len(routine.stages) - 1)
        session = cls(
            routine=routine,
            clock=clock,
            id=record["id"],
            profile=record["profile"],
            scenes={n: Scene.model_validate(s) for n, s in data.get("scenes", {}).items()},
            fitted=Fitted.load(data.get("fitted")),
            status=Status(record["status"]),
            index=index,
            started_at=float(record["started_at"]),
            stage_started_at=float(record["stage_started_at"]),
            deadline=record["deadline"],
            paused_remaining=record["paused_remaining"],
            ended_at=record["ended_at"],
            follows=record.get("follows"),
            reached=stages_reached([s.name for s in routine.stages], index, record.get("reached")),
            today_answered=bool(data.get("today_answered", False)),
            pressure=load_pressure(data.get("pressure")),
        )
        checkins = record.get("checkins")
        if isinstance(checkins, dict):
            session.checkins.load(checkins)
            session.stage_run = float(checkins.get("stage_run") or 0.0)
            since = checkins.get("run_since")
            session.run_since = None if since is None else float(since)
        elif session.status is Status.RUNNING:
            # Stored before stages kept their own time: taken as run since it began.
            session.run_since = session.stage_started_at
        return session

    # --- views ----------------------------------------------------------------------

    def stage_remaining(self, now: float) -> float | None:
        """Return seconds left in the stage; None when it is untimed or the session ended."""
        if self.ended:
            return None
        if self.status is Status.PAUSED:
            return self.paused_remaining
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - now)

    def total_remaining(self, now: float) -> float | None:
        """Return seconds left overall, counting untimed stages as zero."""
        if self.ended:
            return None
        later = sum(s.duration or 0 for s in self.routine.stages[self.index + 1 :])
        return (self.stage_remaining(now) or 0) + later

    def view(self) -> SessionView:
        now = self.clock.now()
        stage = self.stage
        return SessionView(
            id=self.id,
            routine=self.routine.name,
            profile=self.profile,
            status=self.status,
            started_at=self.started_at,
            ended_at=self.ended_at,
            stage=StageView(
                index=self.index,
                name=stage.name,
                title=stage.title or stage.name,
                scene=stage.scene,
                timed=stage.timed,
                duration=stage.duration,
                tempo=stage.tempo,
                started_at=self.stage_started_at,
                remaining=self.stage_remaining(now),
                position=self.routine.position_of(stage),
                guidance=GuidanceView.of(self.checkins.guidance(stage)),
                pressure_now=self.checkins.shown(stage.name),
            ),
            total_remaining=self.total_remaining(now),
            total_duration=self.routine.total_duration,
            minutes=self.fitted.minutes if self.fitted is not None else None,
            durations=[s.duration for s in self.routine.stages],
            stages=[s.name for s in self.routine.stages],
            reached=list(self.reached),
            follows=self.follows,
            today=self._today_view(),
            end_reason=self.end_reason,
            checkin=self.checkin_view(),
            checkins=self._planned_view(),
        )

    def _today_view(self) -> TodayView:
        asking = self.getting_ready
        return TodayView(
            asking=asking,
            answered=self.today_answered,
            questions=[DayQuestion(id=i, text=t, where=w) for i, t, w in DAY_QUESTIONS]
            if asking
            else [],
        )

    def checkin_view(self) -> CheckinView | None:
        asked = self.checkins.current
        if asked is None or self.ended:
            return None
        return CheckinView(
            id=asked.id,
            stage=asked.stage,
            kind=asked.kind,
            prompt=asked.prompt,
            guidance=CHECKIN_GUIDANCE,
            asked_at=asked.asked_at,
            answered=asked.answered,
            answered_at=asked.answered_at,
            now=self.checkins.said(),
        )

    def _planned_view(self) -> list[PlannedCheckin]:
        answers = {given.id: given.answer for given in self.checkins.given}
        return [
            PlannedCheckin(
                id=p.id,
                stage=p.stage,
                at=p.at,
                kind=p.kind,
                prompt=p.prompt,
                answer=answers.get(p.id),
            )
            for p in self.checkins.planned
        ]

    # --- internals ------------------------------------------------------------------

    def _enter(
        self, index: int, at: float, reason: Reason, remaining: float | None = None
    ) -> list[Event]:
        previous = None if reason is Reason.START else self.stage.name
        events = self._dropped(at)
        self.index = index
        self.stage_started_at = at
        if self.stage.name not in self.reached:
            self.reached.append(self.stage.name)
        duration = remaining if remaining is not None else self.stage.duration
        if self.status is Status.PAUSED:
            self.paused_remaining = duration
            self.deadline = None
        else:
            self.deadline = None if duration is None else at + duration
        # Set with time left by another app: the stage has run the rest, and the check-ins
        # it passed meanwhile are not asked.
        own = self.stage.duration
        self.stage_run = max(0.0, own - remaining) if own is not None and remaining else 0.0
        self.run_since = None if self.status is Status.PAUSED else at
        self.checkins.enter(self.stage.name, self.stage_run)
        return [
            *events,
            self._event(
                "stage.changed",
                at,
                previous=previous,
                reason=reason.value,
                scene=self.stage.scene,
                remaining=duration,
            ),
        ]

    def _end(self, at: float, status: Status, reason: Reason) -> list[Event]:
        events = self._dropped(at)
        self.status = status
        self.ended_at = at
        self.end_reason = reason.value
        self.deadline = None
        self.paused_remaining = None
        self.stage_run = self.stage_time(at)
        self.run_since = None
        return [
            *events,
            self._event("session.ended", at, outcome=status.value, reason=reason.value),
        ]

    def _dropped(self, at: float) -> list[Event]:
        """The stage ends: its open check-in is dropped (not counted as an answer)."""
        dropped = self.checkins.leave()
        if dropped is None:
            return []
        return [self._event("checkin.dropped", at, id=dropped.id)]

    def _ask_due(self, now: float) -> list[Event]:
        """Ask the check-in that is due in this stage now, if one is."""
        run = self.stage_time(now) + _DUE_SLACK
        asked, dropped = self.checkins.ask_due(self.stage.name, run, now)
        events = []
        if dropped is not None:
            events.append(self._event("checkin.dropped", now, id=dropped.id))
        if asked is not None:
            events.append(
                self._event(
                    "checkin.asked", now, id=asked.id, moment=asked.kind, prompt=asked.prompt
                )
            )
        return events

    def _event(self, kind: str, at: float, **data: Any) -> Event:
        return Event(kind=kind, session_id=self.id, at=at, stage=self.stage.name, data=data)

    def _index_of(self, name: str) -> int:
        for index, stage in enumerate(self.routine.stages):
            if stage.name == name:
                return index
        raise NotFound("stage", name, known=[s.name for s in self.routine.stages])

    def _require_live(self, action: str) -> None:
        if self.ended:
            raise Conflict(f"cannot {action}: the session has {self.status.value}")

    def require_getting_ready(self) -> None:
        """Raise Conflict, naming why, unless today's questions can be answered now."""
        self._require_live("answer today's questions")
        first = self.routine.stages[0]
        if first.timed:
            raise Conflict(
                f"cannot answer today's questions: the routine {self.routine.name!r} has no "
                "getting-ready stage, so they are asked at the start (`today` in spa mode)"
            )
        if not self.getting_ready:
            raise Conflict(
                "cannot answer today's questions now: the massage has begun (it is at stage "
                f"{self.stage.name!r}); they are asked while getting ready, before it starts"
            )

    def _require(self, status: Status, action: str, otherwise: str) -> None:
        self._require_live(action)
        if self.status is not status:
            raise Conflict(f"cannot {action}: {otherwise}")
