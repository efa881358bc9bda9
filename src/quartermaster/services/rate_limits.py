"""Per-member rate limits, enforced in the reserve's transaction with one conditional upsert on
the member's window for this minute, so they hold across every gateway process. A refused or
failed reserve rolls its count back with everything else."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits, check, minute_of, refusal
from quartermaster.services import audit, authz
from quartermaster.services.context import Context
from quartermaster.store.models import Organization, RateWindow

KEEP = timedelta(minutes=5)


async def take(
    session: AsyncSession, user_id: int, limits: Limits, tokens: int, now: datetime
) -> None:
    """Count one call of `tokens` into this minute, or raise TooManyRequests (nothing counted)."""
    if not limits.active:
        return
    if limits.tokens_per_minute is not None and tokens > limits.tokens_per_minute:
        raise refusal(limits, tokens, now)
    table = RateWindow.__table__
    within = [
        *(
            []
            if limits.requests_per_minute is None
            else [table.c.requests + 1 <= limits.requests_per_minute]
        ),
        *(
            []
            if limits.tokens_per_minute is None
            else [table.c.tokens + tokens <= limits.tokens_per_minute]
        ),
    ]
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(
        user_id=user_id, minute=minute_of(now), requests=1, tokens=tokens
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "minute"],
        set_={"requests": table.c.requests + 1, "tokens": table.c.tokens + tokens},
        where=and_(*within),
    ).returning(table.c.requests)
    if (await session.execute(statement)).first() is None:
        raise refusal(limits, tokens, now)


async def prune(ctx: Context) -> int:
    """Drop windows older than a few minutes (the sweeper calls this)."""
    cutoff = minute_of(ctx.clock.now() - KEEP)
    async with ctx.uow.begin() as tx:
        result = await tx.session.execute(delete(RateWindow).where(RateWindow.minute < cutoff))
        await tx.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def get(ctx: Context, principal: Principal, org_id: int) -> Limits:
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        row = (
            await tx.session.execute(
                select(Organization.rate_limit_rpm, Organization.rate_limit_tpm).where(
                    Organization.id == org_id
                )
            )
        ).one()
    return Limits(row.rate_limit_rpm, row.rate_limit_tpm)


async def set_limits(ctx: Context, principal: Principal, org_id: int, limits: Limits) -> Limits:
    """Change the org's per-member limits (admins with MFA, operators); audited."""
    check(limits)
    async with ctx.uow.begin() as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        org = await tx.session.get(Organization, org_id)
        assert org is not None, "require_org_admin found the org"
        before = {"rpm": org.rate_limit_rpm, "tpm": org.rate_limit_tpm}
        org.rate_limit_rpm = limits.requests_per_minute
        org.rate_limit_tpm = limits.tokens_per_minute
        after = {"rpm": org.rate_limit_rpm, "tpm": org.rate_limit_tpm}
        entry = audit.AuditEntry(
            "org.rate_limits.set", principal.user_id, org_id, "organization", org_id, before, after
        )
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()
    return limits
