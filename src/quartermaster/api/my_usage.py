"""The member's own token window under /api/me: caps, used, left, reset date, past months."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from quartermaster.http.deps import Caller, Ctx
from quartermaster.services.metrics import token_stats

router = APIRouter(prefix="/api/me", tags=["me"])


@router.get("/usage")
async def my_usage(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Your caps this month, what you used and have on hold, what is left, when it resets,
    and your usage in every month so far."""
    return await token_stats.my_usage(ctx, caller)
