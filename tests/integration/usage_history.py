"""Usage history shared by the fold and archive tests: calls spent through the ledger over
October and November 2026, and what an admin sees of them (statistics, and the user table
sorted by each usage column)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from quartermaster.domain.member_table import MemberColumn, MemberQuery
from quartermaster.domain.principal import Principal
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.metrics import member_stats, token_stats
from quartermaster.store.models import UsageEvent
from tests.factories import OrgFixture, add_org
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, EMBEDDING

OPERATOR = Principal.command_line()
_calls = itertools.count()


async def reserve(ctx: Context, user_id: int, model: str = CHAT, **kw: Any) -> str:
    request_id = f"fold-{next(_calls)}"
    tokens = (100, 50) if model == CHAT else (300, 0)
    await ledger.reserve(ctx, user_id, model, *tokens, request_id, **kw)
    return request_id


async def spend(ctx: Context, user_id: int, model: str = CHAT) -> None:
    request_id = await reserve(ctx, user_id, model)
    await ledger.settle(ctx, request_id, *((100, 50) if model == CHAT else (300, 0)))


async def admin_views(ctx: Context, org_id: int) -> dict[str, Any]:
    """What an admin sees: statistics and the user table sorted by each usage column."""
    stats = await token_stats.org_statistics(ctx, OPERATOR, org_id)
    tables = {}
    for column in (MemberColumn.TOTAL, MemberColumn.INFERENCE_PREVIOUS_MONTH):
        query = MemberQuery(sort=column, descending=True)
        page = await member_stats.member_stats(ctx, OPERATOR, org_id, query)
        tables[column.value] = [(m["user_id"], m["total_tokens"]) for m in page["members"]]
    del stats["projection"]
    return {"stats": stats, **tables}


async def org_over_two_months(ctx: Context, clock: FixedClock) -> OrgFixture:
    """Usage in October and November 2026 (UTC), the second member using more in all."""
    clock.set(datetime(2026, 10, 2, tzinfo=UTC))
    org = await add_org(ctx, members=2)
    first, second = org.member_ids
    clock.set(datetime(2026, 10, 20, tzinfo=UTC))
    await spend(ctx, first)
    await spend(ctx, first, EMBEDDING)
    clock.set(datetime(2026, 11, 3, tzinfo=UTC))
    for _ in range(3):
        await spend(ctx, second)
    return org


async def events_by_month(ctx: Context) -> dict[str, tuple[int, int]]:
    """The live usage events' count and tokens per month."""
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(
            select(UsageEvent.period, func.count(), func.sum(UsageEvent.tokens)).group_by(
                UsageEvent.period
            )
        )
        return {period: (count, int(tokens)) for period, count, tokens in rows}
