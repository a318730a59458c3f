"""Routines: what exists (read-only; they come from YAML folders)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from ambiance.core.scenes import Routine

from ..deps import LibraryDep, name_in_path
from ..schemas import ERRORS

router = APIRouter(
    prefix="/routines", tags=["routines"], responses={404: ERRORS[404], 422: ERRORS[422]}
)


@router.get("", response_model=list[Routine], summary="List the routines")
async def list_routines(library: LibraryDep) -> list[Routine]:
    return sorted(library.routines.values(), key=lambda r: r.name)


@router.get("/{name}", response_model=Routine, summary="Show a routine and its stages")
async def get_routine(
    library: LibraryDep, name: Annotated[str, name_in_path("routine", "classic")]
) -> Routine:
    return library.routine(name)
