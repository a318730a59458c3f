"""Scenes: what exists (read-only; they come from YAML folders)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from ambiance.core.scenes import Scene

from ..deps import LibraryDep, name_in_path
from ..schemas import ERRORS

router = APIRouter(
    prefix="/scenes", tags=["scenes"], responses={404: ERRORS[404], 422: ERRORS[422]}
)


@router.get("", response_model=list[Scene], summary="List the scenes")
async def list_scenes(library: LibraryDep) -> list[Scene]:
    return sorted(library.scenes.values(), key=lambda s: s.name)


@router.get("/{name}", response_model=Scene, summary="Show a scene")
async def get_scene(
    library: LibraryDep, name: Annotated[str, name_in_path("scene", "rest")]
) -> Scene:
    return library.scene(name)
