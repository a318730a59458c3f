"""Profiles: whom the massage is for, and what they like (kept on this machine)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from ambiance.core.profiles import Profile
from ambiance.errors import Conflict

from ..deps import CoreDep, name_in_path
from ..schemas import ERRORS, ProfileChanges, ProfileExport

router = APIRouter(
    prefix="/profiles", tags=["profiles"], responses={404: ERRORS[404], 422: ERRORS[422]}
)
Name = Annotated[str, name_in_path("profile", "sam")]


@router.get("", response_model=list[Profile], summary="List the profiles")
async def list_profiles(core: CoreDep) -> list[Profile]:
    return core.profiles.list()


@router.post(
    "",
    response_model=Profile,
    status_code=status.HTTP_201_CREATED,
    summary="Create a profile",
    responses={400: ERRORS[400], 409: ERRORS[409]},
)
async def create_profile(
    core: CoreDep,
    profile: Annotated[
        Profile,
        Body(
            examples=[
                {
                    "name": "sam",
                    "display_name": "Sam",
                    "pressure": "firm",
                    "focus": ["shoulders"],
                    "avoid": ["lower back"],
                    "warmth": "warmer",
                    "oil": "jojoba",
                    "health": {"pregnant": True},
                }
            ]
        ),
    ],
) -> Profile:
    return core.profiles.create(profile)


@router.get("/{name}", response_model=Profile, summary="Show a profile")
async def get_profile(core: CoreDep, name: Name) -> Profile:
    return core.profiles.get(name)


@router.patch(
    "/{name}",
    response_model=Profile,
    summary="Change some fields of a profile",
    description="Only the fields sent change; a field sent as `null` goes back to its "
    'default (`{"display_name": null}` clears the name, `{"favourite_stage": null}` '
    "forgets it).",
    responses={400: ERRORS[400]},
)
async def update_profile(core: CoreDep, name: Name, changes: ProfileChanges) -> Profile:
    return core.profiles.update(name, changes.model_dump(exclude_unset=True, mode="json"))


@router.put(
    "/{name}",
    response_model=Profile,
    summary="Replace a profile (creating it if new)",
    responses={
        400: ERRORS[400],
        409: {**ERRORS[409], "description": "The body names another profile than the path."},
    },
)
async def replace_profile(core: CoreDep, name: Name, profile: Profile) -> Profile:
    if profile.name != name:
        # A valid body for another profile: the schema cannot tie the two names together.
        raise Conflict(f"the body names profile {profile.name!r}, the path {name!r}")
    return core.profiles.put(profile)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a profile (its sessions and feedback stay in the history)",
)
async def delete_profile(core: CoreDep, name: Name) -> Response:
    core.profiles.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/export", response_model=ProfileExport, summary="Export a profile and its feedback"
)
async def export_profile(core: CoreDep, name: Name) -> dict[str, Any]:
    return core.profiles.export(name)


@router.post(
    "/import",
    response_model=Profile,
    status_code=status.HTTP_201_CREATED,
    summary="Import an exported profile",
    responses={400: ERRORS[400], 409: ERRORS[409]},
)
async def import_profile(
    core: CoreDep,
    document: ProfileExport,
    replace: Annotated[bool, Query(description="Replace a profile of the same name.")] = False,
) -> Profile:
    # Its feedback history is not replayed (and may be any JSON, to a depth that dumping
    # it again would refuse): the format and the profile are what an import takes.
    taken = {"format": document.format, "profile": document.profile.model_dump(mode="json")}
    return core.profiles.import_(taken, replace=replace)
