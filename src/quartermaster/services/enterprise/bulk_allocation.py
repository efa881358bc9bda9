"""Bulk allocation: preview a plan for every active member, then apply exactly that plan.

The preview returns every member's before/after, the resulting balance and a `plan_hash` over
the pool, the caps and their versions. Apply recomputes the plan under the org lock and refuses
with 409 `plan_changed` unless the hash is the same, so what is applied is what was previewed.

Errors: NotFound (org), InvalidInput (bad strategy parameters; a plan that raises caps past the
pool), Conflict (plan_changed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.allocation import Balance, BulkPlan, BulkRule, Seat, check_fits, plan_bulk
from quartermaster.domain.errors import Conflict
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise.allocations import write_caps
from quartermaster.services.enterprise.org_pool import OrgMonth, admin_change, org_month
from quartermaster.services.identity import authz
from quartermaster.store.models import Allocation, Membership, User


async def _plan(
    session: AsyncSession, month: OrgMonth, rule: BulkRule
) -> tuple[BulkPlan, dict[int, Allocation]]:
    """The plan over the org's active members, and their allocation rows by membership id."""
    rows = await session.execute(
        select(Membership.id, Membership.user_id, User.email, Allocation)
        .join(User, User.id == Membership.user_id)
        .join(Allocation, Allocation.membership_id == Membership.id)
        .where(Membership.org_id == month.org.id, Membership.removed_at.is_(None))
        .order_by(Membership.id)
        .execution_options(populate_existing=True)
    )
    found = list(rows)
    field = f"max_{rule.kind.value}_tokens"
    seats = [Seat(m, u, e, a.version, getattr(a, field)) for m, u, e, a in found]
    purchased = month.balance(rule.kind).purchased
    plan = plan_bulk(rule, seats, purchased, month.org.min_inference_allocation)
    return plan, {m: a for m, _, _, a in found}


def plan_view(plan: BulkPlan, period: str) -> dict[str, Any]:
    return {
        "kind": plan.kind.value,
        "period": period,
        "purchased": plan.purchased,
        "assigned_before": plan.assigned_before,
        "assigned_after": plan.assigned_after,
        "balance_before": plan.purchased - plan.assigned_before,
        "balance_after": plan.balance_after,
        "fits": plan.fits,
        "plan_hash": plan.plan_hash,
        "rows": [
            {"user_id": r.user_id, "email": r.email, "before": r.before, "after": r.after}
            for r in plan.rows
        ],
    }


async def preview(
    ctx: Context, principal: Principal, org_id: int, rule: BulkRule
) -> dict[str, Any]:
    """The plan `rule` would make now; nothing is written."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        month = await org_month(tx.session, org_id, ctx.clock.now())
        plan, _ = await _plan(tx.session, month, rule)
    return plan_view(plan, month.period)


async def apply(
    ctx: Context, principal: Principal, org_id: int, rule: BulkRule, plan_hash: str
) -> dict[str, Any]:
    """Apply the previewed plan, all rows or none; refused if anything changed since."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, month):
        session = tx.session
        plan, allocations = await _plan(session, month, rule)
        if plan.plan_hash != plan_hash:
            raise Conflict(
                "the pool or the members' allocations changed since the preview; preview again",
                code="plan_changed",
                details={"plan": plan_view(plan, month.period)},
            )
        balance = Balance(plan.kind, plan.purchased, plan.assigned_before)
        check_fits(balance, plan.assigned_before, plan.assigned_after, month.period)
        await _write(session, plan, allocations, now)
        view = plan_view(plan, month.period)
        await _audit(session, principal, org_id, plan, now)
        await tx.commit()
    return view


async def _write(
    session: AsyncSession, plan: BulkPlan, allocations: dict[int, Allocation], now: datetime
) -> None:
    for row in plan.rows:
        allocation = allocations[row.membership_id]
        caps = [allocation.max_inference_tokens, allocation.max_training_tokens]
        caps[0 if plan.kind is TokenKind.INFERENCE else 1] = row.after
        await write_caps(session, allocation, (caps[0], caps[1]), row.version, now)


async def _audit(
    session: AsyncSession, principal: Principal, org_id: int, plan: BulkPlan, now: datetime
) -> None:
    field = f"max_{plan.kind.value}_tokens"
    entry = audit.AuditEntry(
        action="allocation.bulk",
        actor_user_id=principal.user_id,
        org_id=org_id,
        target_type="organization",
        target_id=org_id,
        before={field: {str(r.user_id): r.before for r in plan.rows}},
        after={field: {str(r.user_id): r.after for r in plan.rows}, "plan_hash": plan.plan_hash},
    )
    await audit.record(session, entry, now)
