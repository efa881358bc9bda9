"""What a user may spend: their standing (banned, unpaid, which org) and their cap for a month.

Every metered call asks these two questions before taking a hold. Members of an enterprise draw
on their allocation within the org's pool; everyone else on their individual plan
(services/plans/subscriptions.py). Joining an enterprise switches a user to its allocation at once;
leaving returns them to their plan.

Errors raised here (all PermissionDenied, checked before any hold is written):
member_banned    an admin banned the member; they can sign in but not spend
member_unpaid    the member's seat is unpaid
no_token_pool    the org bought nothing of this kind for the month, or there is no plan at all
plan_unpaid      an individual's paid plan has no payment for the month
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Exists, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import PermissionDenied
from quartermaster.domain.pool import Pool, month_first_day, pool_for
from quartermaster.domain.rate_limits import Limits
from quartermaster.domain.types import TokenKind
from quartermaster.services.plans import subscriptions
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
    max_inference_tokens: int | None = None
    max_training_tokens: int | None = None
    """The member's allocation (None: an individual, or a member without one)."""
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    """The org's per-member rate limits (None: no limit)."""

    @property
    def limits(self) -> Limits:
        return Limits(self.requests_per_minute, self.tokens_per_minute)

    def allocation(self, kind: TokenKind) -> int | None:
        if kind is TokenKind.INFERENCE:
            return self.max_inference_tokens
        return self.max_training_tokens


def no_pool(kind: TokenKind, period: str) -> PermissionDenied:
    return PermissionDenied(
        f"you have no {kind.value} tokens for {period}: ask your organization's admin, or "
        "choose a plan under Settings → Tokens",
        code="no_token_pool",
        details={"kind": kind.value, "period": period},
    )


async def standing_of(session: AsyncSession, user_id: int) -> Standing:
    """The user's active membership and allocation in one query, or an individual's standing."""
    row = (
        await session.execute(
            select(
                Membership.org_id,
                Membership.id,
                Organization.timezone,
                Membership.banned,
                Membership.paid,
                Allocation.max_inference_tokens,
                Allocation.max_training_tokens,
                Organization.rate_limit_rpm,
                Organization.rate_limit_tpm,
            )
            .join(Organization, Organization.id == Membership.org_id)
            .outerjoin(Allocation, Allocation.membership_id == Membership.id)
            .where(Membership.active_user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        return Standing(user_id, None, None, "UTC", banned=False, paid=True)
    return Standing(user_id, *row)


def in_good_standing() -> list[ColumnElement[bool]]:
    """`require_in_good_standing` as SQL on the membership row, for the reserve's single
    statement (fast_reserve.py): neither banned nor unpaid."""
    return [Membership.banned.is_(False), Membership.paid.is_(True)]


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


async def cap_of(
    session: AsyncSession, standing: Standing, kind: TokenKind, period: str
) -> int | None:
    """The cap of the user `standing` describes. An allocation only counts while the org has
    bought tokens of that kind for the month: a lapsed subscription stops spending even though
    the allocations are still on file. Individuals spend from their plan."""
    if standing.org_id is None:
        return await subscriptions.individual_cap(session, standing.user_id, kind, period)
    allocated = standing.allocation(kind)
    if allocated is None:
        return None
    first = month_first_day(period)
    has_pool = await session.scalar(select(bought(standing.org_id, kind, first)))
    return allocated if has_pool else None


def bought(
    org_id: int | ColumnElement[int], kind: TokenKind, first: date | ColumnElement[date]
) -> Exists:
    """The org has a purchase line with tokens of `kind` covering the month that starts on
    `first`: the condition under which its allocations count (the reserve's fast statement
    evaluates it too, with bound parameters)."""
    tokens = Purchase.inference_tokens if kind is TokenKind.INFERENCE else Purchase.training_tokens
    return exists().where(
        Purchase.org_id == org_id,
        Purchase.starts_on <= first,
        Purchase.ends_on > first,
        tokens > 0,
    )


async def pool_of(session: AsyncSession, org_id: int, period: str) -> Pool:
    """What `org_id` bought for `period`, from only the purchase lines that count for it."""
    first = month_first_day(period)
    lines = await session.scalars(
        select(Purchase).where(
            Purchase.org_id == org_id, Purchase.starts_on <= first, Purchase.ends_on > first
        )
    )
    return pool_for(period, list(lines))
