"""The admin's user table with usage: every member's identity, status and caps, with their total
usage (all time, both kinds), inference this and last month and training this month.

Three queries whatever the page size: the page of members (sorted, filtered), their usage from
their counters, and how many members match the filters. Sorting by a month's usage
reads one counter row per member; by total usage, one folded row per member plus the months
after the fold (`services/ledger/fold.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.member_table import (
    USAGE_COLUMNS,
    MemberColumn,
    MemberQuery,
    MemberStatus,
    status_of,
)
from quartermaster.domain.periods import last_closed_period, period_of, previous_period
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import get_org
from quartermaster.services.metrics import member_totals, report_reads
from quartermaster.store.models import Allocation, Membership, UsageCounter, User

Columns = TypeVarTuple("Columns")
"""What a query selects, kept through the helpers that filter and sort it."""


@dataclass(frozen=True)
class Periods:
    current: str
    previous: str
    closed: str
    """The last month closed in every time zone (`domain.periods.last_closed_period`)."""


MONTH_COLUMNS = {
    MemberColumn.INFERENCE_THIS_MONTH: (False, TokenKind.INFERENCE),
    MemberColumn.INFERENCE_PREVIOUS_MONTH: (True, TokenKind.INFERENCE),
    MemberColumn.TRAINING_THIS_MONTH: (False, TokenKind.TRAINING),
}
"""Each month column: whether it is the previous month (else the current one), and its kind."""


def _with_usage(
    query: Select[Any], column: MemberColumn, periods: Periods
) -> tuple[Select[Any], Any]:
    """`query` over memberships, outer-joined to a usage column's rows, and the column's value.

    The rows are joined to the members themselves rather than narrowed first by a subquery of
    the org's members, so the members are read once and the planner chooses between a hash
    join over the months' counters (`ix_usage_counters_period`) and a lookup per member."""
    if column is MemberColumn.TOTAL:
        rows = member_totals.lifetime_rows(periods.closed)
        joined = query.outerjoin(rows, rows.c.user_id == Membership.user_id)
        return joined.group_by(Membership.id), func.coalesce(func.sum(rows.c.value), 0)
    previous, kind = MONTH_COLUMNS[column]
    counter = and_(
        UsageCounter.user_id == Membership.user_id,
        UsageCounter.period == (periods.previous if previous else periods.current),
        UsageCounter.kind == kind.value,
    )
    return query.outerjoin(UsageCounter, counter), func.coalesce(UsageCounter.used, 0)


def _status() -> Any:
    return case(
        (Membership.banned.is_(True), MemberStatus.BANNED.value),
        (Membership.paid.is_(True), MemberStatus.PAID.value),
        else_=MemberStatus.UNPAID.value,
    )


def _has_status(status: MemberStatus) -> Any:
    """`_status() == status` on the flags themselves (both not null), which the planner can
    estimate from their statistics: for the CASE it guesses 0.5 % of the members, and a plan
    made for so few joined their usage first and filtered them after."""
    if status is MemberStatus.BANNED:
        return Membership.banned.is_(True)
    return and_(Membership.banned.is_(False), Membership.paid.is_(status is MemberStatus.PAID))


STORED = {
    MemberColumn.USER_ID: Membership.user_id,
    MemberColumn.EMAIL: User.email_normalized,
    MemberColumn.NAME: User.name,
    MemberColumn.MFA: User.mfa_enabled_at.is_not(None),
    MemberColumn.CAC: User.cac_subject_dn.is_not(None),
    MemberColumn.ROLE: Membership.role,
    MemberColumn.PAID: Membership.paid,
    MemberColumn.BANNED: Membership.banned,
    MemberColumn.MAX_INFERENCE: Allocation.max_inference_tokens,
    MemberColumn.MAX_TRAINING: Allocation.max_training_tokens,
}


def _filtered(query: Select[*Columns], org_id: int, q: MemberQuery) -> Select[*Columns]:
    query = query.where(Membership.org_id == org_id, Membership.removed_at.is_(None))
    if q.email:
        query = query.where(User.email_normalized.contains(q.email.lower(), autoescape=True))
    if q.role is not None:
        query = query.where(Membership.role == q.role.value)
    if q.status is not None:
        query = query.where(_has_status(q.status))
    if q.after_user_id is not None:
        query = query.where(Membership.user_id > q.after_user_id)
    return query


def page_query(
    org_id: int, q: MemberQuery, periods: Periods
) -> Select[Membership, User, Allocation]:
    """The page of members, sorted and filtered."""
    if q.sort in USAGE_COLUMNS:
        return _page_by_usage(org_id, q, periods)
    query = (
        select(Membership, User, Allocation)
        .join(User, User.id == Membership.user_id)
        .join(Allocation, Allocation.membership_id == Membership.id)
    )
    key = STORED[q.sort] if q.sort in STORED else _status()
    return _ordered(_filtered(query, org_id, q), key, q).limit(q.limit).offset(q.offset)


def _page_by_usage(
    org_id: int, q: MemberQuery, periods: Periods
) -> Select[Membership, User, Allocation]:
    """Sorted and cut to the page before the users are joined: the sort then handles one
    narrow row per member, and only the page's members are read whole."""
    members = select(Membership.id).join(Allocation, Allocation.membership_id == Membership.id)
    ids, value = _with_usage(members, q.sort, periods)
    key = value.label("key")
    ids = ids.add_columns(key)
    if q.email:
        ids = ids.join(User, User.id == Membership.user_id)
    page = _ordered(_filtered(ids, org_id, q), key, q).limit(q.limit).offset(q.offset).subquery()
    query = (
        select(Membership, User, Allocation)
        .join(page, page.c.id == Membership.id)
        .join(User, User.id == Membership.user_id)
        .join(Allocation, Allocation.membership_id == Membership.id)
    )
    return _ordered(query, page.c.key, q)


def _ordered(query: Select[*Columns], key: Any, q: MemberQuery) -> Select[*Columns]:
    """Sorted by `key` in the asked order, ties broken by user id in the same direction."""
    tiebreak = Membership.user_id.desc() if q.descending else Membership.user_id
    return query.order_by(key.desc() if q.descending else key, tiebreak)


def row(
    member: Membership, user: User, allocation: Allocation, totals: Any, periods: Periods
) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "name": user.name,
        "mfa_enabled": user.mfa_enabled_at is not None,
        "cac_linked": user.cac_subject_dn is not None,
        "role": member.role,
        "status": status_of(member.paid, member.banned).value,
        "paid": member.paid,
        "banned": member.banned,
        "max_inference_tokens": allocation.max_inference_tokens,
        "max_training_tokens": allocation.max_training_tokens,
        "version": allocation.version,
        "total_tokens": totals.lifetime_tokens,
        "inference_this_month": totals.month(periods.current, TokenKind.INFERENCE),
        "inference_previous_month": totals.month(periods.previous, TokenKind.INFERENCE),
        "training_this_month": totals.month(periods.current, TokenKind.TRAINING),
        "joined_at": member.joined_at.isoformat(),
    }


async def read_page(
    session: AsyncSession, org_id: int, q: MemberQuery, periods: Periods
) -> list[dict[str, Any]]:
    """The page's rows, in two queries: the members, then their usage."""
    found = (await session.execute(page_query(org_id, q, periods))).all()
    totals = await member_totals.totals_by_member(session, [r[1].id for r in found])
    return [row(m, u, a, totals[u.id], periods) for m, u, a in found]


async def periods_of(session: AsyncSession, org_id: int, ctx: Context) -> Periods:
    org = await get_org(session, org_id)
    now = ctx.clock.now()
    current = period_of(now, org.timezone)
    return Periods(current, previous_period(current), last_closed_period(now))


async def member_stats(
    ctx: Context, principal: Principal, org_id: int, q: MemberQuery
) -> dict[str, Any]:
    """A page of the user table, its position and the number of members matching the filters."""
    async with report_reads.admin_report(ctx, principal, org_id) as session:
        periods = await periods_of(session, org_id, ctx)
        rows = await read_page(session, org_id, q, periods)
        total = await _count(session, org_id, q)
    return {
        "org_id": org_id,
        "current_month": periods.current,
        "previous_month": periods.previous,
        "total": total,
        "limit": q.limit,
        "offset": q.offset,
        "members": rows,
    }


async def _count(session: AsyncSession, org_id: int, q: MemberQuery) -> int:
    """How many members match the filters. A query of its own: as a window column of the page
    it made the database join every member's row even for a page read straight off an index.
    The users are joined only to filter by email: every membership has its user (a foreign
    key, not null), so the join cannot change the count, and it cost half of it."""
    query = (
        select(func.count())
        .select_from(Membership)
        .join(Allocation, Allocation.membership_id == Membership.id)
    )
    if q.email:
        query = query.join(User, User.id == Membership.user_id)
    return int(await session.scalar(_filtered(query, org_id, q)) or 0)
