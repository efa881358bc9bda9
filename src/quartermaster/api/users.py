"""Administration of individual users: login history for org admins; MFA and CAC resets for
operators. Each is checked in the service, not here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.fields import LoginsLimit
from quartermaster.services.identity import cac, logins, mfa

router = APIRouter(prefix="/api/users", tags=["administration"])


@router.get("/{user_id}/logins")
async def user_logins(
    user_id: int, ctx: Ctx, caller: Caller, limit: LoginsLimit = 50
) -> list[dict[str, Any]]:
    """A member's sign-in attempts: for admins of their org (MFA verified) and operators."""
    return await logins.history(ctx, caller, user_id, limit)


@router.post("/{user_id}/mfa/reset", status_code=204)
async def reset_mfa(user_id: int, ctx: Ctx, caller: Caller) -> None:
    """Operator: clear a user's MFA (lost device); their sessions end. Audited."""
    await mfa.operator_reset(ctx, caller, user_id)


@router.delete("/{user_id}/cac", status_code=204)
async def unlink_cac(user_id: int, ctx: Ctx, caller: Caller) -> None:
    """Operator: unlink a user's certificate. Audited."""
    await cac.unlink(ctx, caller, user_id)
