"""Rooms: their state, spa mode, the session's commands, the stage and scenes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, status

from ambiance.core.room import Room
from ambiance.service import Ambiance

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


def _view(room: Room) -> RoomView:
    return room.view()


async def _settled(core: Ambiance, room: Room) -> RoomView:
    """Answer once the lights match, or after the settle timeout (a bridge may be down)."""
    await room.settle(core.settings.devices.settle_timeout)
    return _view(room)


@router.get("", response_model=list[RoomSummary], summary="List the rooms")
async def list_rooms(core: CoreDep) -> list[RoomSummary]:
    return [room.view().summary() for room in core.rooms.values()]


@router.get("/{room}", response_model=RoomView, summary="Show a room: session, stage, lights")
async def get_room(room: RoomDep) -> RoomView:
    return _view(room)


@router.post(
    "/{room}/spa",
    response_model=RoomView,
    status_code=status.HTTP_201_CREATED,
    summary="Spa mode: one tap starts the session",
    description="Snapshots the room, fades the lights to the routine's first scene and "
    "starts walking its stages. The body is optional.",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
)
async def start_spa(
    core: CoreDep, room: RoomDep, body: Annotated[SpaRequest | None, Body()] = None
) -> RoomView:
    body = body or SpaRequest()
    room.start_spa(routine=body.routine, profile=body.profile)
    return await _settled(core, room)


@router.delete(
    "/{room}/spa",
    response_model=RoomView,
    summary="End spa mode early; the room goes back as it was",
    responses={409: ERRORS[409]},
)
async def stop_spa(core: CoreDep, room: RoomDep) -> RoomView:
    room.stop_session()
    return await _settled(core, room)


@router.post(
    "/{room}/session/goto",
    response_model=RoomView,
    summary="Go to a named stage",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
)
async def goto(core: CoreDep, room: RoomDep, body: GotoRequest) -> RoomView:
    room.goto(body.stage)
    return await _settled(core, room)


@router.post(
    "/{room}/session/extend",
    response_model=RoomView,
    summary="Give the current stage more time",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
)
async def extend(core: CoreDep, room: RoomDep, body: ExtendRequest) -> RoomView:
    room.extend(body.seconds)
    return await _settled(core, room)


@router.post(
    "/{room}/session/{action}",
    response_model=RoomView,
    summary="Pause, resume, next, previous or stop the session",
    responses={409: ERRORS[409], 422: ERRORS[422]},
)
async def command(
    core: CoreDep, room: RoomDep, action: Annotated[Action, Path(examples=["next"])]
) -> RoomView:
    commands = {
        "pause": room.pause,
        "resume": room.resume,
        "next": room.next,
        "previous": room.previous,
        "stop": room.stop_session,
    }
    commands[action]()
    return await _settled(core, room)


@router.put(
    "/{room}/stage",
    response_model=RoomView,
    summary="Set the stage explicitly (another app leads; the timer follows)",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
)
async def set_stage(core: CoreDep, room: RoomDep, body: StageRequest) -> RoomView:
    room.set_stage(body.stage, body.remaining)
    return await _settled(core, room)


@router.post(
    "/{room}/scene",
    response_model=RoomView,
    summary="Apply a named scene, without a routine",
    responses={400: ERRORS[400], 422: ERRORS[422]},
)
async def apply_scene(core: CoreDep, room: RoomDep, body: SceneRequest) -> RoomView:
    room.apply_scene(body.scene)
    return await _settled(core, room)
