"""Request bodies and the error shape, with examples for the OpenAPI page.

The views the API answers (rooms, sessions, health) are the core's own models
(`ambiance.core.views`), and the room commands' bodies are their arguments in the command
table (`ambiance.core.commands`): declared once, for every door."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ambiance.core.people import EXPORT_FEEDBACK, migrate
from ambiance.core.profiles import (
    AreaPressures,
    Areas,
    Brightness,
    DisplayName,
    FreeAreas,
    HealthAnswers,
    Notes,
    Pressure,
    Profile,
    Short,
    StageMinutes,
    StageName,
    StagePressures,
    UnmatchedAreas,
    Warmth,
)
from ambiance.core.views import (
    FeedbackGiven,
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
    """Any fields of a profile, to change just those; `null` puts a field back to its
    default (as in a JSON merge patch): `{"display_name": null}` clears the name.

    Each field has the profile's own type and limits (`ambiance.core.profiles`), so what
    this schema allows is what the change accepts; tests/api/test_profiles.py holds them
    to it.
    """

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    pressure: Pressure | None = None
    focus: Areas | None = None
    avoid: Areas | None = None
    area_pressure: AreaPressures | None = None
    unmatched_areas: UnmatchedAreas | None = None
    health: HealthAnswers | None = Field(
        default=None,
        description="Only the answers sent change: "
        '`{"health": {"pregnant": true}}` keeps the others, and an answer sent as `null` '
        "is forgotten.",
    )
    warmth: Warmth | None = None
    brightness: Brightness | None = None
    music: Short | None = None
    oil: Short | None = None
    scent: Short | None = None
    notes: Notes | None = None
    stage_minutes: StageMinutes | None = None
    stage_pressure: StagePressures | None = None
    favourite_stage: StageName | None = None


class ExportedProfile(Profile):
    """A profile as an export holds it: also one from before areas had ids, whose
    `focus` and `avoid` were free text. Those are migrated as stored ones are: what names
    an area becomes its id, anything else is kept as written in `unmatched_areas`."""

    focus: FreeAreas = Field(default_factory=list)
    avoid: FreeAreas = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_before_areas(cls, value: Any) -> Any:
        return migrate(value)[0] if isinstance(value, dict) else value

    def profile(self) -> Profile:
        """The profile it holds (raises ValidationError if an area is still not one)."""
        return Profile.model_validate(self.model_dump(mode="json"))


class ProfileExport(BaseModel):
    format: Literal["ambiance.profile/1"]
    profile: ExportedProfile
    feedback: list[dict[str, object]] = Field(
        default_factory=list, max_length=EXPORT_FEEDBACK, description="Its history (not replayed)."
    )


class FeedbackResult(BaseModel):
    session: str
    profile: Profile | None = Field(description="The profile as it learned, if any.")
    feedback: FeedbackGiven = Field(description="The feedback kept: its id, when and whose.")
    ignored: list[str] = Field(
        description="Stages named that the session never reached: kept out, not learned."
    )
    warnings: list[str] = Field(description="What was left out, and why, in words.")
