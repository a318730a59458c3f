"""Profiles: whom the massage is for, and what they like (kept on this machine)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from ambiance.core.profiles import Profile
from ambiance.errors import InvalidInput

from ..deps import CoreDep
from ..schemas import ERRORS, ProfileChanges, ProfileExport

router = APIRouter(prefix="/profiles", tags=["profiles"], responses={404: ERRORS[404]})


@router.get("", response_model=list[Profile], summary="List the profiles")
async def list_profiles(core: CoreDep) -> list[Profile]:
    return core.profiles.list()


@router.post(
    "",
    response_model=Profile,
    status_code=status.HTTP_201_CREATED,
    summary="Create a profile",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
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
                    "oil": "almond",
                }
            ]
        ),
    ],
) -> Profile:
    return core.profiles.create(profile)


@router.get("/{name}", response_model=Profile, summary="Show a profile")
async def get_profile(core: CoreDep, name: str) -> Profile:
    return core.profiles.get(name)


@router.patch(
    "/{name}",
    response_model=Profile,
    summary="Change some fields of a profile",
    responses={400: ERRORS[400], 422: ERRORS[422]},
)
async def update_profile(core: CoreDep, name: str, changes: ProfileChanges) -> Profile:
    return core.profiles.update(name, changes.model_dump(exclude_unset=True, mode="json"))


@router.put(
    "/{name}",
    response_model=Profile,
    summary="Replace a profile (creating it if new)",
    responses={400: ERRORS[400], 422: ERRORS[422]},
)
async def replace_profile(core: CoreDep, name: str, profile: Profile) -> Profile:
    if profile.name != name:
        raise InvalidInput(f"the body names profile {profile.name!r}, the path {name!r}")
    return core.profiles.put(profile)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a profile (its sessions and feedback stay in the history)",
)
async def delete_profile(core: CoreDep, name: str) -> Response:
    core.profiles.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/export", response_model=ProfileExport, summary="Export a profile and its feedback"
)
async def export_profile(core: CoreDep, name: str) -> dict[str, Any]:
    return core.profiles.export(name)


@router.post(
    "/import",
    response_model=Profile,
    status_code=status.HTTP_201_CREATED,
    summary="Import an exported profile",
    responses={400: ERRORS[400], 409: ERRORS[409], 422: ERRORS[422]},
)
async def import_profile(
    core: CoreDep,
    document: ProfileExport,
    replace: Annotated[bool, Query(description="Replace a profile of the same name.")] = False,
) -> Profile:
    return core.profiles.import_(document.model_dump(mode="json"), replace=replace)
