"""An org admin's per-member rate limits (requests and tokens per minute). The windows that
enforce them on every call are in services/ledger/rate_window.py."""

from __future__ import annotations

from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits, check
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.store.models import Organization


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
