"""An organization's pool for its current month and what is assigned from it.

Every write that changes what is assigned (allocations, members joining or leaving, approved
token requests, bulk plans) first takes `lock_org`: a row lock on PostgreSQL, and on SQLite the
write transaction itself (BEGIN IMMEDIATE). So two admins raising two different members at once
are checked one after the other, and Σ allocations ≤ pool holds for every kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.allocation import Balance
from quartermaster.domain.errors import NotFound
from quartermaster.domain.periods import period_of
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import PeriodKey, TokenKind
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.services.ledger.spending import pool_of
from quartermaster.store.models import Allocation, Membership, Organization
from quartermaster.store.uow import Transaction


@dataclass(frozen=True)
class OrgMonth:
    """The org, the month its clock is in now, and its balance of each kind of token."""

    org: Organization
    period: PeriodKey
    inference: Balance
    training: Balance

    def balance(self, kind: TokenKind) -> Balance:
        return self.inference if kind is TokenKind.INFERENCE else self.training


async def get_org(session: AsyncSession, org_id: int, *, lock: bool = False) -> Organization:
    query = select(Organization).where(Organization.id == org_id)
    # FOR NO KEY UPDATE: serializes writers of the org's month, yet lets other transactions
    # insert rows that reference the org (an audit event's foreign key takes KEY SHARE). With
    # FOR UPDATE, an admin's edit waiting for the audit chain's lock and an upload holding it
    # while inserting its event deadlocked (the soak found it).
    org = await session.scalar(query.with_for_update(key_share=True) if lock else query)
    if org is None:
        raise NotFound("no such organization", param="org_id")
    return org


async def assigned(session: AsyncSession, org_id: int) -> tuple[int, int]:
    """Σ (inference, training) caps of the org's active members."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(Allocation.max_inference_tokens), 0),
                func.coalesce(func.sum(Allocation.max_training_tokens), 0),
            )
            .join(Membership, Membership.id == Allocation.membership_id)
            .where(Allocation.org_id == org_id, Membership.removed_at.is_(None))
        )
    ).one()
    return int(row[0]), int(row[1])


async def org_month(
    session: AsyncSession, org_id: int, now: datetime, *, lock: bool = False
) -> OrgMonth:
    """The org's balances for the month it is in at `now`; `lock=True` before changing them."""
    org = await get_org(session, org_id, lock=lock)
    period = period_of(now, org.timezone)
    pool = await pool_of(session, org_id, period)
    inference, training = await assigned(session, org_id)
    return OrgMonth(
        org,
        period,
        Balance(TokenKind.INFERENCE, pool.inference_tokens, inference),
        Balance(TokenKind.TRAINING, pool.training_tokens, training),
    )


@asynccontextmanager
async def admin_change(
    ctx: Context, principal: Principal, org_id: int
) -> AsyncIterator[tuple[Transaction, OrgMonth]]:
    """The write transaction of an admin's change to `org_id`: authorized first, then the org's
    row locked and this month's pool read, so concurrent changes queue instead of overcommitting."""
    async with ctx.uow.begin() as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        yield tx, await org_month(tx.session, org_id, ctx.clock.now(), lock=True)
