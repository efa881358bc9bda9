"""Settling a hold this process took, in one statement on PostgreSQL.

The receipt already says everything the booking needs (who, which month, which model, the
rates, the amount held), so claiming the pending hold, adding the usage event, moving the
counter from reserved to used and adding to the monthly roll-up are one data-modifying
statement, each part gated on the claim: atomic in autocommit, and nothing at all when the hold
is no longer pending (`ledger.settle` then handles the replay or the late settlement).

If the database cannot be reached, the booking is retried (services/settlements.py): a
settlement the server kept is then found and replayed, one it lost is written again.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql

from quartermaster.domain.types import HoldState
from quartermaster.services.context import Context
from quartermaster.services.ledger.rows import Usage, event_row, rollup_row
from quartermaster.services.ledger.sql import bound, counter_is_bound, params
from quartermaster.store import hot
from quartermaster.store.models import Hold, UsageCounter, UsageEvent, UsageMonthly
from quartermaster.store.models.base import table_of


@cache
def _settle() -> Select[Any]:
    """PostgreSQL: claim the pending hold, add the event, move the counter from reserved to
    used, and add to the roll-up — each part gated on the claim, all in one statement."""
    claimed = (
        update(Hold)
        .where(Hold.request_id == bindparam("b_request_id"), Hold.state == HoldState.PENDING.value)
        .values(state=HoldState.SETTLED.value, resolved_at=bindparam("b_created_at"))
        .returning(Hold.id)
        .cte("claimed")
    )
    events = table_of(UsageEvent)
    event = postgresql.insert(events).from_select(
        EVENT_FIELDS, bound(events, EVENT_FIELDS).select_from(claimed)
    )
    counted = (
        update(UsageCounter)
        .where(*counter_is_bound(), exists(select(claimed.c.id)))
        .values(
            used=UsageCounter.used + bindparam("b_tokens"),
            reserved=UsageCounter.reserved - bindparam("b_held"),
        )
    )
    table = table_of(UsageMonthly)
    rolled = postgresql.insert(table).from_select(
        ROLLUP_FIELDS, bound(table, ROLLUP_FIELDS).select_from(claimed)
    )
    rolled = rolled.on_conflict_do_update(
        index_elements=["rollup_key"],
        set_={name: table.c[name] + rolled.excluded[name] for name in ("tokens", "requests")},
    )
    booked = select(claimed.c.id)
    return booked.add_cte(event.cte("event"), counted.cte("counted"), rolled.cte("rolled"))


EVENT_FIELDS = [c.name for c in table_of(UsageEvent).c if c.name != "id"]
ROLLUP_FIELDS = [c.name for c in table_of(UsageMonthly).c if c.name != "id"]


async def settle(ctx: Context, usage: Usage, now: datetime) -> bool:
    """Book `usage` against its pending hold in one statement (PostgreSQL). False — nothing
    written — when the hold is not pending or the database is not PostgreSQL."""
    if ctx.uow.engine.dialect.name != "postgresql":
        return False
    keys, increments, extra = rollup_row(usage)
    values = event_row(usage, now) | keys | increments | extra
    async with hot.connect(ctx.uow) as connection:
        row = await connection.first(_settle(), params(values))
    return row is not None
