"""Login history: every sign-in attempt, readable by the user and by their org's admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.lockout import ADDRESS_WINDOW
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.services.identity.sessions import ClientInfo
from quartermaster.store.models import LoginAttempt

MAX_LOGINS = 500
"""The most sign-in attempts one page shows."""


@dataclass(frozen=True)
class Attempt:
    email: str
    method: str
    success: bool
    reason: str | None = None
    user_id: int | None = None
    mfa_used: bool = False


def record(session: AsyncSession, attempt: Attempt, client: ClientInfo, now: datetime) -> None:
    session.add(
        LoginAttempt(
            user_id=attempt.user_id,
            email=attempt.email[:320],
            ip=client.ip,
            user_agent=(client.user_agent or "")[:512],
            method=attempt.method,
            mfa_used=attempt.mfa_used,
            success=attempt.success,
            reason=attempt.reason,
            created_at=now,
        )
    )


async def recent_failures_from(session: AsyncSession, ip: str | None, now: datetime) -> int:
    if ip is None:
        return 0
    count = await session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.ip == ip,
            LoginAttempt.success.is_(False),
            LoginAttempt.created_at > now - ADDRESS_WINDOW,
        )
    )
    return int(count or 0)


async def history(
    ctx: Context, principal: Principal, user_id: int | None = None, limit: int = 50
) -> list[dict[str, object]]:
    """Newest first. Yourself, or a member of an org you administer, or anyone for operators."""
    if not 1 <= limit <= MAX_LOGINS:
        raise InvalidInput(f"limit must be between 1 and {MAX_LOGINS}", param="limit")
    target = principal.uid if user_id is None else user_id
    async with ctx.uow.begin(write=False) as tx:
        if target != principal.user_id:
            await authz.require_admin_of_user(tx.session, principal, target)
        rows = await tx.session.scalars(
            select(LoginAttempt)
            .where(LoginAttempt.user_id == target)
            .order_by(LoginAttempt.id.desc())
            .limit(limit)
        )
        return [
            {
                "at": row.created_at.isoformat(),
                "ip": row.ip,
                "user_agent": row.user_agent,
                "method": row.method,
                "mfa_used": row.mfa_used,
                "success": row.success,
                "reason": row.reason,
            }
            for row in rows
        ]
