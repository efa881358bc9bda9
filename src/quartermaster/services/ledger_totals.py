"""Per-member totals (lifetime, both kinds; and per month and kind).

Read from the members' usage counters, which the ledger keeps equal to their roll-ups
(`rollups_match_counters`) and which are keyed by user first, so a page of members is a few
index lookups. Sorting every member of an org by lifetime total reads the folded months'
one row per member instead (`services/usage_fold.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.types import TokenKind
from quartermaster.services.context import Context
from quartermaster.services.usage_fold import folded_through, late
from quartermaster.store.models import FoldedUserUsage, UsageCounter, UsageEvent


@dataclass(frozen=True)
class MemberTotals:
    """What a member has been charged: all time, and by (period, kind)."""

    lifetime_tokens: int = 0
    monthly: dict[tuple[str, TokenKind], int] = field(default_factory=dict)

    def month(self, period: str, kind: TokenKind = TokenKind.INFERENCE) -> int:
        """Tokens charged in `period` for `kind`; zero for a month with no usage."""
        return self.monthly.get((period, kind), 0)


async def totals_by_member(
    session: AsyncSession, user_ids: Sequence[int]
) -> dict[int, MemberTotals]:
    """Totals for each of `user_ids` (every one present, zero when unused), in one query."""
    rows = await session.execute(
        select(UsageCounter.user_id, UsageCounter.period, UsageCounter.kind, UsageCounter.used)
        .where(UsageCounter.user_id.in_(user_ids))
        .where(UsageCounter.used != 0)
    )
    monthly: dict[int, dict[tuple[str, TokenKind], int]] = {user_id: {} for user_id in user_ids}
    for user_id, period, kind, tokens in rows:
        monthly[user_id][(period, TokenKind(kind))] = int(tokens)
    return {
        user_id: MemberTotals(sum(months.values()), months) for user_id, months in monthly.items()
    }


def lifetime_by_user(users: Select[Any], closed: str) -> Any:
    """A query of (user_id, value): the lifetime tokens of each of `users` with any usage,
    from the fold plus its late events plus the counters of the months after it."""
    through = folded_through(closed)
    rows = union_all(
        select(FoldedUserUsage.user_id, FoldedUserUsage.tokens.label("value")).where(
            FoldedUserUsage.user_id.in_(users), through.is_not(None)
        ),
        select(UsageEvent.user_id, UsageEvent.tokens).where(
            late(), UsageEvent.period <= through, UsageEvent.user_id.in_(users)
        ),
        select(UsageCounter.user_id, UsageCounter.used).where(
            UsageCounter.period > func.coalesce(through, ""), UsageCounter.user_id.in_(users)
        ),
    ).subquery()
    return select(rows.c.user_id, func.sum(rows.c.value).label("value")).group_by(rows.c.user_id)


async def member_totals(ctx: Context, user_id: int) -> MemberTotals:
    """One member's totals, e.g. for their own usage page."""
    async with ctx.uow.begin(write=False) as tx:
        return (await totals_by_member(tx.session, [user_id]))[user_id]
