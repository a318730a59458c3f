"""Body areas: the one vocabulary of steps, profiles and health answers (core/areas.py),
for a client that lets people pick them by plain name."""

from __future__ import annotations

from fastapi import APIRouter

from ambiance.core.areas import AREAS
from ambiance.core.views import AreaView

router = APIRouter(prefix="/areas", tags=["areas"])


@router.get(
    "",
    response_model=list[AreaView],
    summary="List the body areas",
    description="The areas to work first (scalp to feet), then the areas of caution.",
)
async def list_areas() -> list[AreaView]:
    return [AreaView(id=a.id, name=a.name, caution=a.caution, why=a.why) for a in AREAS.values()]
