"""`qm usage archive --through YYYY-MM`: remove the usage events of closed months, keeping what
they added up to.

Counters and roll-ups keep every month's totals, so pages, caps and exports by month read the
same after an archive; only the activity log and the events export lose those months' rows.
Before the events go, their tokens and count per roll-up key are written to `usage_archived`,
and `qm ledger check` adds those rows to the live events: every invariant is still checked in
full. On a partitioned table (store/partitions.py) a month's partition is dropped whole; rows
elsewhere (the default partition, or a plain table) are deleted and summed in one statement.
The fold is forgotten in the same transaction and rebuilt by the next fold (its late events
may be among those archived).

Errors: InvalidInput for a malformed month or one not yet closed; Conflict while a hold of
those months is pending; PermissionDenied for anyone but the operator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, delete, func, insert, literal, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.periods import last_closed_period, parse_period
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.types import HoldState
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.ledger import fold
from quartermaster.store import partitions
from quartermaster.store.db import dialect_name
from quartermaster.store.models import ArchivedUsage, Hold, UsageEvent
from quartermaster.store.models.base import table_of

KEYS = ("org_id", "user_id", "period", "kind", "model_id", "route")


@dataclass
class _Tally:
    events: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class Archived:
    through: str
    events: int
    tokens: int
    partitions_dropped: list[str]


async def archive(ctx: Context, principal: Principal, through: str) -> Archived:
    """Archive the events of every month up to and including `through`."""
    require_operator(principal)
    now = ctx.clock.now()
    _check_closed(through, last_closed_period(now))
    async with ctx.uow.begin() as tx:
        session = tx.session
        await _refuse_pending(session, through)
        dropped, tally = [], _Tally()
        if dialect_name(session) == "postgresql" and await partitions.is_partitioned(session):
            for partition in await partitions.listed(session):
                if partition.within(through):
                    await partitions.lock_for_archive(session, partition)
                    await _write(session, _sum_into_archive(partition.name, now), tally)
                    await partitions.drop(session, partition)
                    dropped.append(partition.name)
        await _archive_rows(session, through, now, tally)
        await fold.forget(session)
        result = Archived(through, tally.events, tally.tokens, dropped)
        await _record(session, principal, result, now)
        await tx.commit()
    return result


def _check_closed(through: str, closed: str) -> None:
    parse_period(through)
    if through > closed:
        raise InvalidInput(
            f"{through} is not closed in every time zone yet; the latest month that can be"
            f" archived now is {closed}",
            param="through",
            code="period_open",
        )


async def _refuse_pending(session: AsyncSession, through: str) -> None:
    pending = await session.scalar(
        select(func.count())
        .select_from(Hold)
        .where(Hold.state == HoldState.PENDING.value, Hold.period <= through)
    )
    if pending:
        raise Conflict(
            f"{pending} call(s) of those months still hold tokens; archive once they have"
            " settled or expired (`qm ledger sweep`)",
            code="holds_pending",
        )


def _sum_into_archive(source: Any, now: datetime, *where: Any) -> Any:
    """INSERT INTO usage_archived the tokens and count of `source`'s rows per roll-up key,
    returning what it wrote; `source` is a table name (a partition) or a selectable with the
    events' columns."""
    rows = table(source, *map(column, (*KEYS, "tokens"))) if isinstance(source, str) else source
    group = [rows.c[key] for key in KEYS]
    stamp = literal(now, ArchivedUsage.archived_at.type)
    sums = select(*group, func.sum(rows.c.tokens), func.count(), stamp).where(*where)
    written = insert(ArchivedUsage).from_select(
        [*KEYS, "tokens", "requests", "archived_at"], sums.group_by(*group)
    )
    return written.returning(ArchivedUsage.requests, ArchivedUsage.tokens)


async def _write(session: AsyncSession, statement: Any, tally: _Tally) -> None:
    """Run one of `_sum_into_archive`'s statements, adding its events and tokens to `tally`."""
    for requests, tokens in await session.execute(statement):
        tally.events += requests
        tally.tokens += tokens


async def _archive_rows(session: AsyncSession, through: str, now: datetime, tally: _Tally) -> None:
    """Sum and delete the events of those months that are not in a dropped partition. On
    PostgreSQL one statement deletes and sums exactly the rows it saw, so a settlement
    committing meanwhile is left for the next archive; SQLite's one writer excludes it."""
    events = table_of(UsageEvent)
    chosen = events.c.period <= through
    if dialect_name(session) == "postgresql":
        gone = delete(events).where(chosen).returning(*(events.c[k] for k in (*KEYS, "tokens")))
        gone_rows = gone.cte("gone")
        await _write(session, _sum_into_archive(gone_rows, now).add_cte(gone_rows), tally)
        return
    await _write(session, _sum_into_archive(events, now, chosen), tally)
    await session.execute(delete(events).where(chosen))


async def _record(
    session: AsyncSession, principal: Principal, done: Archived, now: datetime
) -> None:
    await audit.record(
        session,
        audit.AuditEntry(
            action="usage.archive",
            actor_user_id=principal.user_id,
            target_type="usage_events",
            target_id=done.through,
            after=asdict(done),
        ),
        now,
    )
