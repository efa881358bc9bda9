"""GET/PUT /api/orgs/{org_id}/rate-limits: per-member calls and tokens per minute."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from quartermaster.api.orgs import org_admin
from quartermaster.domain.rate_limits import Limits
from quartermaster.http.deps import Caller, Ctx
from quartermaster.services.enterprise import rate_limit_settings

router = APIRouter(
    prefix="/api/orgs/{org_id}", tags=["organization"], dependencies=[Depends(org_admin)]
)


class RateLimits(BaseModel):
    requests_per_minute: int | None = Field(default=None, ge=1, le=10**7)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=10**13)


def _out(limits: Limits) -> RateLimits:
    return RateLimits(
        requests_per_minute=limits.requests_per_minute, tokens_per_minute=limits.tokens_per_minute
    )


@router.get("/rate-limits")
async def get_limits(org_id: int, ctx: Ctx, caller: Caller) -> RateLimits:
    return _out(await rate_limit_settings.get(ctx, caller, org_id))


@router.put("/rate-limits")
async def put_limits(org_id: int, body: RateLimits, ctx: Ctx, caller: Caller) -> RateLimits:
    """Each member may start at most this many metered calls, and reserve at most this many
    platform tokens, per clock minute, across all gateway processes. null: no limit."""
    limits = Limits(body.requests_per_minute, body.tokens_per_minute)
    return _out(await rate_limit_settings.set_limits(ctx, caller, org_id, limits))
