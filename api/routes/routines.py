"""Routines: what exists (read-only; they come from YAML folders), and what each can be
fitted to (ambiance/core/fitting.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ambiance.core.fitting import MAX_MINUTES, MIN_MINUTES, fit, reach
from ambiance.core.scenes import Routine
from ambiance.core.views import RoutineFit, StageLength

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


@router.get(
    "/{name}/fit",
    response_model=RoutineFit,
    summary="Fit a routine to a length: the shortest and longest possible, each stage's length",
    description="Without `minutes`, the routine's own lengths. A length it cannot take is a "
    "422 naming the shortest and the longest possible (as spa mode answers it).",
)
async def fit_routine(
    library: LibraryDep,
    name: Annotated[str, name_in_path("routine", "classic")],
    minutes: Annotated[
        float | None,
        Query(
            ge=MIN_MINUTES,
            le=MAX_MINUTES,
            allow_inf_nan=False,
            description="The length to fit the routine to, in minutes.",
            examples=[20],
        ),
    ] = None,
) -> RoutineFit:
    routine = library.routine(name)
    fitted = routine if minutes is None else fit(routine, minutes)
    found = reach(routine)
    return RoutineFit(
        routine=routine.name,
        minutes=minutes,
        shortest=found.shortest,
        longest=found.longest,
        own=found.own,
        total=round(fitted.total_duration / 60, 1),
        stages=[
            StageLength(name=stage.name, title=stage.title or stage.name, duration=stage.duration)
            for stage in fitted.stages
        ],
    )
