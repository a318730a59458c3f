from __future__ import annotations

from fastapi import APIRouter

from ..deps import CoreDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Is the service and every room well?")
async def health(core: CoreDep) -> Health:
    return core.health()
