"""Per-member totals (lifetime, both kinds; and per month and kind) read from the monthly
roll-ups, which hold a handful of rows per member and month, so a page listing hundreds of
members never scans the usage events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.types import TokenKind
from quartermaster.services.context import Context
from quartermaster.store.models import UsageMonthly


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
        select(
            UsageMonthly.user_id,
            UsageMonthly.period,
            UsageMonthly.kind,
            func.sum(UsageMonthly.tokens),
        )
        .where(UsageMonthly.user_id.in_(user_ids))
        .group_by(UsageMonthly.user_id, UsageMonthly.period, UsageMonthly.kind)
    )
    monthly: dict[int, dict[tuple[str, TokenKind], int]] = {user_id: {} for user_id in user_ids}
    for user_id, period, kind, tokens in rows:
        monthly[user_id][(period, TokenKind(kind))] = int(tokens)
    return {
        user_id: MemberTotals(sum(months.values()), months) for user_id, months in monthly.items()
    }


async def member_totals(ctx: Context, user_id: int) -> MemberTotals:
    """One member's totals, e.g. for their own usage page."""
    async with ctx.uow.begin(write=False) as tx:
        return (await totals_by_member(tx.session, [user_id]))[user_id]
