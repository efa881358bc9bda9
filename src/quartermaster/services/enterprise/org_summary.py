"""The numbers above the admin's user table: what the org bought this month, what it assigned,
the balance of each kind, how many members, and whether a shrunken pool left it over-assigned.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from quartermaster.domain.allocation import Balance
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import org_month
from quartermaster.services.identity import authz
from quartermaster.store.models import Membership


def _kind(prefix: str, balance: Balance) -> dict[str, Any]:
    return {
        f"{prefix}purchased": balance.purchased,
        f"{prefix}assigned": balance.assigned,
        f"{prefix}balance": balance.left,
        f"{prefix}over_assigned": balance.over_assigned,
    }


async def summary(ctx: Context, principal: Principal, org_id: int) -> dict[str, Any]:
    """`over_assigned` is true when either kind has more assigned than bought for the month:
    raising caps is then refused until admins lower them to fit."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        month = await org_month(tx.session, org_id, ctx.clock.now())
        members = await tx.session.scalar(
            select(func.count()).where(Membership.org_id == org_id, Membership.removed_at.is_(None))
        )
    return {
        "org_id": month.org.id,
        "name": month.org.name,
        "billing_address": month.org.billing_address,
        "additional_information": month.org.additional_information,
        "timezone": month.org.timezone,
        "current_month": month.period,
        "members": int(members or 0),
        "min_inference_allocation": month.org.min_inference_allocation,
        **_kind("tokens_", month.inference),
        **_kind("training_tokens_", month.training),
        "over_assigned": month.inference.over_assigned or month.training.over_assigned,
    }
