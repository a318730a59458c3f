"""Rooms: their state. Their commands' routes are made from the command table
(commands.py), and answer with `_settled` below."""

from __future__ import annotations

from fastapi import APIRouter

from ambiance.core.room import Room
from ambiance.service import Ambiance

from ..deps import CoreDep, RoomDep
from ..schemas import ERRORS, RoomSummary, RoomView

router = APIRouter(prefix="/rooms", tags=["rooms"], responses={404: ERRORS[404], 422: ERRORS[422]})


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
