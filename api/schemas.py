"""Request bodies and the error shape, with examples for the OpenAPI page.

The views the API answers (rooms, sessions, health) are the core's own models
(`ambiance.core.views`), and the room commands' bodies are their arguments in the command
table (`ambiance.core.commands`): declared once, for every door."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.core.profiles import Profile
from ambiance.core.views import (
    Health,
    RoomSummary,
    RoomView,
    SessionDetail,
    SessionSummary,
)

# --- responses --------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(examples=["room_not_found"])
    message: str = Field(examples=["no room named 'kitchen' (known: bedroom)"])
    detail: object | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


__all__ = [  # the core's views, answered as they are
    "Health",
    "RoomSummary",
    "RoomView",
    "SessionDetail",
    "SessionSummary",
]

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "The body cannot be read (not UTF-8 JSON)."},
    404: {"model": ErrorBody, "description": "No such room, scene, routine or stage."},
    409: {"model": ErrorBody, "description": "The command does not fit the room's state."},
    422: {"model": ErrorBody, "description": "A value is missing or out of range."},
}


# --- profiles and sessions ---------------------------------------------------------------


class ProfileChanges(BaseModel):
    """Any fields of a profile, to change just those."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = None
    pressure: Literal["soft", "medium", "firm"] | None = None
    focus: list[str] | None = None
    avoid: list[str] | None = None
    warmth: Literal["warmer", "as_scene", "cooler"] | None = None
    brightness: Literal["dimmer", "as_scene", "brighter"] | None = None
    music: str | None = None
    oil: str | None = None
    scent: str | None = None
    notes: str | None = None
    stage_minutes: dict[str, float] | None = None
    stage_pressure: dict[str, Literal["soft", "medium", "firm"]] | None = None
    favourite_stage: str | None = None


class ProfileExport(BaseModel):
    format: Literal["ambiance.profile/1"]
    profile: Profile
    feedback: list[dict[str, object]] = Field(default_factory=list)


class FeedbackResult(BaseModel):
    session: str
    profile: Profile | None = Field(description="The profile as it learned, if any.")
