"""GET /healthz: 200 when the database answers and its schema is current, else 503."""

from __future__ import annotations

from fastapi import APIRouter, Request

from quartermaster.services import health

router = APIRouter()


@router.get("/healthz", tags=["operations"])
async def healthz(request: Request) -> dict[str, str | float]:
    """Liveness and readiness for load balancers: checks the database on every call. With a
    metrics replica set, its state is reported beside, without failing the check."""
    return await health.check(request.app.state.ctx)
