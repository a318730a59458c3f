"""Sessions: the history, and the receiver's feedback after one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from ambiance.config import ROOM_NAME
from ambiance.core.people import FeedbackTaken
from ambiance.core.profiles import Feedback
from ambiance.core.scenes import NAME_PATTERN
from ambiance.core.views import FeedbackGiven
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
    followers = core.store.sessions.followers([r.id for r in records])
    return [SessionSummary.of(core.current(r), followers.get(r.id)) for r in records]


@router.get("/sessions/{session_id}", response_model=SessionDetail, summary="One session")
async def get_session(core: CoreDep, session_id: SessionId) -> SessionDetail:
    record = _record(core, session_id)
    followed_by = core.store.sessions.followers([session_id]).get(session_id)
    feedback = core.store.feedback.for_session(session_id)
    given = feedback[0] if feedback else None
    return SessionDetail(
        **SessionSummary.of(record, followed_by).model_dump(),
        commands=core.store.sessions.commands(session_id),
        feedback=feedback,
        feedback_given=None
        if given is None
        else FeedbackGiven(id=given["id"], at=given["at"], by=given["profile"]),
    )


def _result(session_id: str, taken: FeedbackTaken) -> FeedbackResult:
    return FeedbackResult(
        session=session_id,
        profile=taken.profile,
        feedback=taken.given,
        ignored=taken.ignored,
        warnings=taken.warnings,
    )


FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: ERRORS[400],
    409: {
        **ERRORS[409],
        "description": "The session has not ended, or its feedback was given already "
        "(`feedback_already_given`, naming the first: its id, when and whose).",
    },
}


@router.post(
    "/sessions/{session_id}/feedback",
    response_model=FeedbackResult,
    status_code=status.HTTP_201_CREATED,
    summary="Say how it was; the profile learns from it",
    description="Once per session: a second feedback (from another phone) is a 409 naming "
    "the first, and is not learned. Only the stages the session reached are learned from; "
    "answers on others are left out and listed in `ignored` (with `warnings`).",
    responses=FEEDBACK_RESPONSES,
)
async def give_feedback(core: CoreDep, session_id: SessionId, feedback: Feedback) -> FeedbackResult:
    return _result(session_id, core.give_feedback(_record(core, session_id), feedback))


@router.post(
    "/rooms/{room}/feedback",
    response_model=FeedbackResult,
    status_code=status.HTTP_201_CREATED,
    summary="Feedback on the room's last session",
    description="As `POST /sessions/{session_id}/feedback` for the room's newest session.",
    responses=FEEDBACK_RESPONSES,
)
async def give_room_feedback(core: CoreDep, room: RoomDep, feedback: Feedback) -> FeedbackResult:
    last = core.store.sessions.history(room=room.name, limit=1)
    if not last:
        raise Conflict(f"no session has run in {room.name!r} yet")
    return _result(last[0].id, core.give_feedback(core.current(last[0]), feedback))
