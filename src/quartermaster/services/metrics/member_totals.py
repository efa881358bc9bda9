"""Per-member totals (lifetime, both kinds; and per month and kind).

Read from the members' usage counters, which the ledger keeps equal to their roll-ups
(`rollups_match_counters`) and which are keyed by user first, so a page of members is a few
index lookups. Sorting every member of an org by lifetime total reads the folded months'
one row per member instead (`services/ledger/fold.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Subquery, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.types import TokenKind
from quartermaster.services.context import Context
from quartermaster.services.ledger.fold import folded_through, late
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


def lifetime_rows(closed: str) -> Subquery:
    """(user_id, value) rows that add up to each user's lifetime tokens, several per user: the
    fold's row, the late events booked into folded months, the counters of the months after
    the fold. Not narrowed to any users: the caller joins its members to them.

    The counters are split at `closed`, the reader's last closed month: the months after it are
    a range the planner can size and read through `ix_usage_counters_period`; the months between
    the fold and `closed` (none once the fold has caught up) are bounded by the fold's period,
    which the planner cannot see, so alone it would estimate a third of the table and scan it.
    `closed` is written into the statement, not bound, for the same reason: a prepared
    statement's generic plan would not see a bound value either."""
    through = folded_through(closed)
    after = literal(closed, literal_execute=True)
    counters = select(UsageCounter.user_id, UsageCounter.used)
    return union_all(
        select(FoldedUserUsage.user_id, FoldedUserUsage.tokens.label("value")).where(
            through.is_not(None)
        ),
        select(UsageEvent.user_id, UsageEvent.tokens).where(late(), UsageEvent.period <= through),
        counters.where(UsageCounter.period > after),
        counters.where(
            UsageCounter.period > func.coalesce(through, ""), UsageCounter.period <= after
        ),
    ).subquery()


async def member_totals(ctx: Context, user_id: int) -> MemberTotals:
    """One member's totals, e.g. for their own usage page."""
    async with ctx.uow.begin(write=False) as tx:
        return (await totals_by_member(tx.session, [user_id]))[user_id]
