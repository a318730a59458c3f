"""Rooms: their state, spa mode, the session's commands, the stage and scenes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, status

from ..deps import CoreDep, RoomDep
from ..schemas import (
    ERRORS,
    Action,
    ExtendRequest,
    GotoRequest,
    RoomSummary,
    RoomView,
    SceneRequest,
    SpaRequest,
    StageRequest,
)

router = APIRouter(prefix="/rooms", tags=["rooms"], responses={404: ERRORS[404]})

# How long a command waits for the lights to match before it answers anyway: long enough
# for a bridge on the LAN, short enough that a dead bridge does not hang the phone.
SETTLE_SECONDS = 2.0


def _summary(view: dict[str, object]) -> RoomSummary:
    session = view["session"]
    assert isinstance(session, dict | None)
    health = view["health"]
    assert isinstance(health, dict)
    return RoomSummary(
        name=str(view["name"]),
        title=str(view["title"]),
        routine=str(view["routine"]),
        status="idle" if session is None else session["status"],
        stage=None if session is None else session["stage"]["name"],
        health=health["status"],
    )


async def _view(room: RoomDep, settle: bool = True) -> RoomView:
    if settle:
        await room.lights.wait_synced(SETTLE_SECONDS)
    return RoomView.model_validate(room.view())


@router.get("", response_model=list[RoomSummary], summary="List the rooms")
async def list_rooms(core: CoreDep) -> list[RoomSummary]:
    return [_summary(room.view()) for room in core.rooms.values()]


@router.get("/{room}", response_model=RoomView, summary="Show a room: session, stage, lights")
async def get_room(room: RoomDep) -> RoomView:
    return await _view(room, settle=False)


@router.post(
    "/{room}/spa",
    response_model=RoomView,
    status_code=status.HTTP_201_CREATED,
    summary="Spa mode: one tap starts the session",
    description="Snapshots the room, fades the lights to the routine's first scene and "
    "starts walking its stages. The body is optional.",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def start_spa(room: RoomDep, body: Annotated[SpaRequest | None, Body()] = None) -> RoomView:
    body = body or SpaRequest()
    room.start_spa(routine=body.routine, profile=body.profile)
    return await _view(room)


@router.delete(
    "/{room}/spa",
    response_model=RoomView,
    summary="End spa mode early; the room goes back as it was",
    responses={409: ERRORS[409]},
)
async def stop_spa(room: RoomDep) -> RoomView:
    room.stop_session()
    return await _view(room)


@router.post(
    "/{room}/session/goto",
    response_model=RoomView,
    summary="Go to a named stage",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def goto(room: RoomDep, body: GotoRequest) -> RoomView:
    room.goto(body.stage)
    return await _view(room)


@router.post(
    "/{room}/session/extend",
    response_model=RoomView,
    summary="Give the current stage more time",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def extend(room: RoomDep, body: ExtendRequest) -> RoomView:
    room.extend(body.seconds)
    return await _view(room)


@router.post(
    "/{room}/session/{action}",
    response_model=RoomView,
    summary="Pause, resume, next, previous or stop the session",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def command(room: RoomDep, action: Annotated[Action, Path(examples=["next"])]) -> RoomView:
    commands = {
        "pause": room.pause,
        "resume": room.resume,
        "next": room.next,
        "previous": room.previous,
        "stop": room.stop_session,
    }
    commands[action]()
    return await _view(room)


@router.put(
    "/{room}/stage",
    response_model=RoomView,
    summary="Set the stage explicitly (another app leads; the timer follows)",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def set_stage(room: RoomDep, body: StageRequest) -> RoomView:
    room.set_stage(body.stage, body.remaining)
    return await _view(room)


@router.post(
    "/{room}/scene",
    response_model=RoomView,
    summary="Apply a named scene, without a routine",
    responses={422: ERRORS[422]},
)
async def apply_scene(room: RoomDep, body: SceneRequest) -> RoomView:
    room.apply_scene(body.scene)
    return await _view(room)
