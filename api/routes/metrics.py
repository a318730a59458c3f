"""GET /metrics: the service's metrics in Prometheus' text format (ambiance/infra/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ambiance.infra.metrics import CONTENT_TYPE

from ..deps import CoreDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(core: CoreDep) -> Response:
    return Response(core.metrics.render(), media_type=CONTENT_TYPE)
