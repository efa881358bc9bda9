"""`qm usage partition`: usage events partitioned by month on PostgreSQL, and the months ahead
kept ready by every server process.

Converting an existing table copies its rows into the new partitions in one transaction, with
the table locked: a booking made meanwhile waits, then lands in the new table. Run again,
it only adds the months ahead. Each server process checks once an hour that this month's
partition and the next two's exist, so inserts never land in the default partition in normal
running; if they did, the check moves them into the month's partition when it creates it.

Errors: InvalidInput on SQLite (one table; `qm usage archive` works there without partitions);
PermissionDenied for anyone but the operator.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import period_of, shift_period
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.store import partitions
from quartermaster.store.db import dialect_name

log = logging.getLogger(__name__)

KEEP_INTERVAL_S = 3600.0
MONTHS_AHEAD = 2


@dataclass(frozen=True)
class Partitioned:
    converted: bool
    """Whether this run turned the plain table into a partitioned one."""
    created: list[str]
    partitions: list[partitions.Partition]


def months_around(now: datetime) -> list[str]:
    """This month and `MONTHS_AHEAD` more, in UTC. An org's month is at most a day off UTC's:
    the next one's partition already exists, and last month's was made while it was ahead (an
    archived month is not made again)."""
    current = period_of(now)
    return [shift_period(current, months) for months in range(MONTHS_AHEAD + 1)]


async def partition(ctx: Context, principal: Principal) -> Partitioned:
    """Partition usage events by month, or add the months ahead if they already are."""
    require_operator(principal)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        _require_postgresql(session)
        converted = not await partitions.is_partitioned(session)
        if converted:
            created = await partitions.convert(session, months_around(now))
        else:
            created = await partitions.add_months(session, months_around(now))
        if created:
            await audit.record(
                session,
                audit.AuditEntry(
                    action="usage.partition",
                    actor_user_id=principal.user_id,
                    target_type="usage_events",
                    after={"converted": converted, "created": created},
                ),
                now,
            )
        await tx.commit()
    async with ctx.uow.begin(write=False) as tx:
        return Partitioned(converted, created, await partitions.listed(tx.session))


async def keep_months_ahead(ctx: Context) -> list[str]:
    """Create any missing partition of the months around now; nothing on SQLite or a plain
    table. Runs as the server, not as an admin: creating a partition changes no data."""
    async with ctx.uow.begin() as tx:
        session = tx.session
        if dialect_name(session) != "postgresql" or not await partitions.is_partitioned(session):
            return []
        created = await partitions.add_months(session, months_around(ctx.clock.now()))
        await tx.commit()
    return created


async def run_keeper(ctx: Context, interval_s: float = KEEP_INTERVAL_S) -> None:
    """`keep_months_ahead` every `interval_s` until cancelled, in every server process (the
    conversion made the months ahead already); a failure (database down) is logged and retried
    on the next tick."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            created = await keep_months_ahead(ctx)
        except Exception:
            log.exception("adding usage event partitions failed; retrying in %.0f s", interval_s)
            continue
        if created:
            log.info("usage event partitions created: %s", ", ".join(created))


def _require_postgresql(session: AsyncSession) -> None:
    if dialect_name(session) != "postgresql":
        raise InvalidInput(
            "partitioning needs PostgreSQL; on SQLite usage events stay in one table, and"
            " `qm usage archive` removes old months from it",
            code="unsupported_database",
        )
