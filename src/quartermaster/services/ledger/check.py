"""`qm ledger check`: recompute the ledger's invariants (DESIGN.md §3) from its tables and name
every difference. Each invariant has a name that appears in the output and in docs/ledger.md.

The reads run in one snapshot (REPEATABLE READ on PostgreSQL; one read transaction in WAL mode
on SQLite), so a check during live traffic never reports a settle that is half seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.periods import period_of
from quartermaster.domain.types import HoldState, TokenKind
from quartermaster.services.context import Context
from quartermaster.services.ledger import spending
from quartermaster.services.ledger.fold import STATE_ID, late
from quartermaster.store.db import dialect_name
from quartermaster.store.models import (
    Allocation,
    ArchivedUsage,
    FoldedOrgUsage,
    FoldedUserUsage,
    Hold,
    Membership,
    Organization,
    UsageCounter,
    UsageEvent,
    UsageFold,
    UsageMonthly,
)

Key = tuple[Any, ...]


class Invariant(StrEnum):
    EVENTS_MATCH_COUNTERS = "events_match_counters"
    """Σ usage_events.tokens = usage_counters.used, per user, period and kind."""
    ROLLUPS_MATCH_COUNTERS = "rollups_match_counters"
    """Σ usage_monthly.tokens = usage_counters.used, per user, period and kind."""
    ROLLUPS_MATCH_EVENTS = "rollups_match_events"
    """Each roll-up's tokens and requests = Σ tokens and the count of its usage events, per
    org, user, period, kind, model and route (the roll-up's own key)."""
    RESERVED_NONNEGATIVE = "reserved_nonnegative"
    RESERVED_MATCHES_HOLDS = "reserved_matches_pending_holds"
    """usage_counters.reserved = Σ amount of the pending holds, per user, period and kind."""
    ALLOCATIONS_WITHIN_POOL = "allocations_within_pool"
    """Σ active members' allocations ≤ what the org bought, per kind, for the current month."""
    FOLD_MATCHES_COUNTERS = "fold_matches_counters"
    """A user's folded tokens + their late events = Σ usage_counters.used, in the folded months."""
    FOLD_MATCHES_ROLLUPS = "fold_matches_rollups"
    """An org's folded rows + its late events = Σ usage_monthly, tokens and requests, per period,
    kind, model and route, in the folded months (services/ledger/fold.py)."""


@dataclass(frozen=True)
class Difference:
    invariant: Invariant
    where: str
    expected: int
    found: int

    def __str__(self) -> str:
        return (
            f"{self.invariant.value} at {self.where}: expected {self.expected}, found {self.found}"
        )


async def check(ctx: Context) -> list[Difference]:
    """Every difference between what the ledger's tables say and what they must say."""
    now = ctx.clock.now()
    async with ctx.uow.begin(write=False) as tx:
        session = tx.session
        if dialect_name(session) == "postgresql":
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return [
            *await _counter_differences(session),
            *await _pool_differences(session, now),
            *await _fold_differences(session),
        ]


async def _totals(
    session: AsyncSession, keys: list[Any], value: Any, *where: Any
) -> dict[Key, int]:
    """Σ `value` grouped by `keys`, over the rows matching `where`."""
    (totals,) = await _measures(session, keys, [value], *where)
    return totals


async def _measures(
    session: AsyncSession, keys: list[Any], values: list[Any], *where: Any
) -> list[dict[Key, int]]:
    """Σ each of `values` grouped by `keys`, over the rows matching `where`, in one read."""
    query = select(*keys, *map(func.sum, values)).where(*where).group_by(*keys)
    measures: list[dict[Key, int]] = [{} for _ in values]
    width = len(keys)
    for row in await session.execute(query):
        key = tuple(row[:width])
        for sums, value in zip(measures, row[width:], strict=True):
            sums[key] = int(value)
    return measures


async def _sums(session: AsyncSession, column: Any, *where: Any) -> dict[Key, int]:
    table = column.class_
    return await _totals(session, [table.user_id, table.period, table.kind], column, *where)


def compare(
    invariant: Invariant, expected: dict[Key, int], found: dict[Key, int]
) -> list[Difference]:
    """The keys where `found` differs from `expected` (a missing key counts as zero), in order;
    only those are sorted, so a ledger that agrees costs one pass over the keys."""
    differing = [
        key for key in expected.keys() | found.keys() if expected.get(key, 0) != found.get(key, 0)
    ]
    return [
        Difference(invariant, ":".join(map(str, key)), expected.get(key, 0), found.get(key, 0))
        for key in sorted(differing, key=str)
    ]


def _rollup_keys(table: Any) -> list[Any]:
    return [table.org_id, table.user_id, table.period, table.kind, table.model_id, table.route]


def _by_counter(by_rollup: dict[Key, int]) -> dict[Key, int]:
    """Roll-up keys' totals added up per counter key (user, period, kind)."""
    sums: dict[Key, int] = {}
    for (_, user_id, period, kind, _, _), value in by_rollup.items():
        sums[user_id, period, kind] = sums.get((user_id, period, kind), 0) + value
    return sums


async def _counter_differences(session: AsyncSession) -> list[Difference]:
    """The counters against the events and roll-ups, and the roll-ups against the events; the
    events are read once, by the roll-up's key, and added up per counter from there. Archived
    months' events count as what they added up to (services/ledger/archive.py)."""
    used = await _sums(session, UsageCounter.used)
    reserved = await _sums(session, UsageCounter.reserved)
    live_tokens, live_requests = await _measures(
        session, _rollup_keys(UsageEvent), [UsageEvent.tokens, literal(1)]
    )
    archived_tokens, archived_requests = await _measures(
        session, _rollup_keys(ArchivedUsage), [ArchivedUsage.tokens, ArchivedUsage.requests]
    )
    event_tokens = _plus(live_tokens, archived_tokens)
    event_requests = _plus(live_requests, archived_requests)
    rollup_tokens, rollup_requests = await _measures(
        session, _rollup_keys(UsageMonthly), [UsageMonthly.tokens, UsageMonthly.requests]
    )
    events, rollups = _by_counter(event_tokens), _by_counter(rollup_tokens)
    pending = await _sums(session, Hold.amount, Hold.state == HoldState.PENDING.value)
    negative = [
        Difference(Invariant.RESERVED_NONNEGATIVE, ":".join(map(str, key)), 0, value)
        for key, value in sorted(reserved.items(), key=str)
        if value < 0
    ]
    return [
        *compare(Invariant.EVENTS_MATCH_COUNTERS, events, used),
        *compare(Invariant.ROLLUPS_MATCH_COUNTERS, rollups, used),
        *compare(Invariant.ROLLUPS_MATCH_EVENTS, event_tokens, rollup_tokens),
        *[
            Difference(d.invariant, f"{d.where}:requests", d.expected, d.found)
            for d in compare(Invariant.ROLLUPS_MATCH_EVENTS, event_requests, rollup_requests)
        ],
        *negative,
        *compare(Invariant.RESERVED_MATCHES_HOLDS, pending, reserved),
    ]


async def _pool_differences(session: AsyncSession, now: datetime) -> list[Difference]:
    differences = []
    for org in await session.scalars(select(Organization).order_by(Organization.id)):
        period = period_of(now, org.timezone)
        pool = await spending.pool_of(session, org.id, period)
        allocated = (
            await session.execute(
                select(
                    func.coalesce(func.sum(Allocation.max_inference_tokens), 0),
                    func.coalesce(func.sum(Allocation.max_training_tokens), 0),
                )
                .join(Membership, Membership.id == Allocation.membership_id)
                .where(Allocation.org_id == org.id, Membership.removed_at.is_(None))
            )
        ).one()
        for kind, bought, given in (
            (TokenKind.INFERENCE, pool.inference_tokens, int(allocated[0])),
            (TokenKind.TRAINING, pool.training_tokens, int(allocated[1])),
        ):
            if given > bought:
                where = f"org {org.id} ({org.name}):{period}:{kind.value}"
                differences.append(
                    Difference(Invariant.ALLOCATIONS_WITHIN_POOL, where, bought, given)
                )
    return differences


def _plus(a: dict[Key, int], b: dict[Key, int]) -> dict[Key, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in a.keys() | b.keys()}


def _org_keys(table: Any) -> list[Any]:
    return [table.org_id, table.period, table.kind, table.model_id, table.route]


async def _fold_differences(session: AsyncSession) -> list[Difference]:
    """The fold against the counters and roll-ups it summarises (nothing to check without one)."""
    through = await session.scalar(select(UsageFold.through_period).where(UsageFold.id == STATE_ID))
    if through is None:
        return []
    late_in = (late(), UsageEvent.period <= through)
    users = _plus(
        await _totals(session, [FoldedUserUsage.user_id], FoldedUserUsage.tokens),
        await _totals(session, [UsageEvent.user_id], UsageEvent.tokens, *late_in),
    )
    counters = await _totals(
        session, [UsageCounter.user_id], UsageCounter.used, UsageCounter.period <= through
    )
    differences = compare(Invariant.FOLD_MATCHES_COUNTERS, counters, users)
    org_late = (*late_in, UsageEvent.org_id.is_not(None))
    org_closed = (UsageMonthly.org_id.is_not(None), UsageMonthly.period <= through)
    for measure, late_value in (("tokens", UsageEvent.tokens), ("requests", literal(1))):
        found = _plus(
            await _totals(session, _org_keys(FoldedOrgUsage), getattr(FoldedOrgUsage, measure)),
            await _totals(session, _org_keys(UsageEvent), late_value, *org_late),
        )
        expected = await _totals(
            session, _org_keys(UsageMonthly), getattr(UsageMonthly, measure), *org_closed
        )
        differences += [
            Difference(d.invariant, f"{d.where}:{measure}", d.expected, d.found)
            for d in compare(Invariant.FOLD_MATCHES_ROLLUPS, expected, found)
        ]
    return differences
