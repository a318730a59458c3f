"""Sessions: the history, and the receiver's feedback after one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from ambiance.config import ROOM_NAME
from ambiance.core.profiles import Feedback
from ambiance.core.scenes import NAME_PATTERN
from ambiance.errors import Conflict, NotFound
from ambiance.infra.store import SessionRecord

from ..deps import CoreDep, RoomDep
from ..schemas import ERRORS, FeedbackResult, SessionDetail, SessionSummary

router = APIRouter(tags=["sessions"], responses={404: ERRORS[404], 422: ERRORS[422]})

MAX_LIMIT = 500
# Far past any history (a session a day for 2,700 years), and far inside SQLite's 64-bit
# integers: a larger offset was an OverflowError, a plain-text 500.
MAX_OFFSET = 1_000_000
SessionId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The session's id (from the history or a room's view).",
        examples=["3f2a9c0e5b7d4e21a8c6f0b1d2e3f4a5"],
    ),
]


def _record(core: CoreDep, session_id: str) -> SessionRecord:
    record = core.store.sessions.get(session_id)
    if record is None:
        raise NotFound("session", session_id)
    return core.current(record)


@router.get("/sessions", response_model=list[SessionSummary], summary="The session history")
async def list_sessions(
    core: CoreDep,
    room: Annotated[
        str | None, Query(pattern=ROOM_NAME, description="Only this room's sessions.")
    ] = None,
    profile: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="Only this profile's sessions.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Skip this many (newest first).")
    ] = 0,
) -> list[SessionSummary]:
    records = core.store.sessions.history(room=room, profile=profile, limit=limit, offset=offset)
    return [SessionSummary.of(core.current(r)) for r in records]


@router.get("/sessions/{session_id}", response_model=SessionDetail, summary="One session")
async def get_session(core: CoreDep, session_id: SessionId) -> SessionDetail:
    record = _record(core, session_id)
    return SessionDetail(
        **SessionSummary.of(record).model_dump(),
        commands=core.store.sessions.commands(session_id),
        feedback=core.store.feedback.for_session(session_id),
    )


@router.post(
    "/sessions/{session_id}/feedback",
    response_model=FeedbackResult,
    status_code=status.HTTP_201_CREATED,
    summary="Say how it was; the profile learns from it",
    responses={400: ERRORS[400], 409: ERRORS[409]},
)
async def give_feedback(core: CoreDep, session_id: SessionId, feedback: Feedback) -> FeedbackResult:
    record = _record(core, session_id)
    profile = core.profiles.feedback(record, feedback)
    return FeedbackResult(session=session_id, profile=profile)


@router.post(
    "/rooms/{room}/feedback",
    response_model=FeedbackResult,
    status_code=status.HTTP_201_CREATED,
    summary="Feedback on the room's last session",
    responses={400: ERRORS[400], 409: ERRORS[409]},
)
async def give_room_feedback(core: CoreDep, room: RoomDep, feedback: Feedback) -> FeedbackResult:
    last = core.store.sessions.history(room=room.name, limit=1)
    if not last:
        raise Conflict(f"no session has run in {room.name!r} yet")
    profile = core.profiles.feedback(core.current(last[0]), feedback)
    return FeedbackResult(session=last[0].id, profile=profile)
