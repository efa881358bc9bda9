"""What a user may spend: their standing (banned, unpaid, which org) and their cap for a month.

Every metered call asks these two questions before taking a hold. Members of an enterprise draw
on their allocation within the org's pool; everyone else on their individual plan
(services/subscriptions.py). Joining an enterprise switches a user to its allocation at once;
leaving returns them to their plan.

Errors raised here (all PermissionDenied, checked before any hold is written):
member_banned    an admin banned the member; they can sign in but not spend
member_unpaid    the member's seat is unpaid
no_token_pool    the org bought nothing of this kind for the month, or there is no plan at all
plan_unpaid      an individual's paid plan has no payment for the month
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import PermissionDenied
from quartermaster.domain.pool import Pool, month_first_day, pool_for
from quartermaster.domain.types import TokenKind
from quartermaster.services import subscriptions
from quartermaster.store.models import Allocation, Membership, Organization, Purchase


@dataclass(frozen=True)
class Standing:
    """The user's active membership as the ledger needs it: whose pool, which clock, which flags."""

    user_id: int
    org_id: int | None
    """None for an individual (on a plan, in UTC months)."""
    membership_id: int | None
    timezone: str
    banned: bool
    paid: bool


def no_pool(kind: TokenKind, period: str) -> PermissionDenied:
    return PermissionDenied(
        f"you have no {kind.value} tokens for {period}: ask your organization's admin, or "
        "choose a plan (GET /api/plans)",
        code="no_token_pool",
        details={"kind": kind.value, "period": period},
    )


async def standing_of(session: AsyncSession, user_id: int) -> Standing:
    """The user's active membership, or an individual's standing when they have none."""
    row = (
        await session.execute(
            select(Membership, Organization.timezone)
            .join(Organization, Organization.id == Membership.org_id)
            .where(Membership.active_user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        return Standing(user_id, None, None, "UTC", banned=False, paid=True)
    membership, timezone = row
    return Standing(
        user_id, membership.org_id, membership.id, timezone, membership.banned, membership.paid
    )


def require_in_good_standing(standing: Standing) -> Standing:
    """Refuse banned and unpaid members before any hold."""
    if standing.banned:
        raise PermissionDenied(
            "your account is banned from metered calls in this organization; ask an admin",
            code="member_banned",
        )
    if not standing.paid:
        raise PermissionDenied(
            "your seat in this organization is unpaid; ask an admin to mark it paid",
            code="member_unpaid",
        )
    return standing


async def cap_for(session: AsyncSession, user_id: int, kind: TokenKind, period: str) -> int | None:
    """The user's cap for `kind` in `period`; None when there is no pool to draw from at all.

    An allocation only counts while the org has bought tokens of that kind for the month: a
    lapsed subscription stops spending even though the allocations are still on file.
    """
    row = (
        await session.execute(
            select(Allocation)
            .join(Membership, Membership.id == Allocation.membership_id)
            .where(Membership.active_user_id == user_id)
        )
    ).scalar_one_or_none()
    if row is None:
        return await subscriptions.individual_cap(session, user_id, kind, period)
    pool = await pool_of(session, row.org_id, period)
    if kind is TokenKind.INFERENCE:
        return row.max_inference_tokens if pool.inference_tokens > 0 else None
    return row.max_training_tokens if pool.training_tokens > 0 else None


async def pool_of(session: AsyncSession, org_id: int, period: str) -> Pool:
    """What `org_id` bought for `period`, from only the purchase lines that count for it."""
    first = month_first_day(period)
    lines = await session.scalars(
        select(Purchase).where(
            Purchase.org_id == org_id, Purchase.starts_on <= first, Purchase.ends_on > first
        )
    )
    return pool_for(period, list(lines))
