"""The reserve's fast path for an enterprise member in good standing: two statements.

One SELECT reads everything the checks need (the model and its rates, the membership, the org's
clock and limits, the allocation, and whether the org's list allows the model). Then one
statement takes the hold: the conditional UPDATE of the member's counter — which also requires
that the org bought tokens of this kind for the month (`caps.bought`) — and the hold's INSERT,
as one data-modifying statement on PostgreSQL (atomic in autocommit) and as one BEGIN IMMEDIATE
transaction on SQLite. Under PostgreSQL's READ COMMITTED the full path's reads were no more
isolated than this one statement: the guarantee is the same, the counter row's predicate.

Anything else — a refusal of any kind, an individual on a plan, an org with rate limits, the
month's first call (no counter row yet) — answers None, and `ledger.reserve` runs the full path,
which applies every rule with its own message. So this path can only ever take a hold the full
path would also take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Insert, Select, Table, exists, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from quartermaster.domain import holds
from quartermaster.domain.periods import period_of
from quartermaster.domain.types import HoldState, ModelKind
from quartermaster.services import caps
from quartermaster.services.context import Context
from quartermaster.services.ledger_counters import counter_is
from quartermaster.services.ledger_rows import Usage, duplicate, event_row, hold_row, rollup_row
from quartermaster.services.model_access import org_allows
from quartermaster.store.models import (
    Allocation,
    Hold,
    Membership,
    ModelCatalogEntry,
    Organization,
    UsageCounter,
    UsageEvent,
    UsageMonthly,
)


@dataclass(frozen=True)
class Taken:
    """A hold the fast path wrote."""

    org_id: int
    model_id: int
    period: str
    rates: holds.Rates
    amount: int
    expires_at: datetime


def _profile(user_id: int, model: str) -> Select[Any]:
    m = ModelCatalogEntry
    return (
        select(
            m.id,
            m.kind,
            m.input_rate,
            m.output_rate,
            m.training_rate,
            m.max_output_tokens,
            Membership.org_id,
            Membership.banned,
            Membership.paid,
            Organization.timezone,
            Organization.rate_limit_rpm,
            Organization.rate_limit_tpm,
            Allocation.max_inference_tokens,
            Allocation.max_training_tokens,
            org_allows(Membership.org_id, m.id).label("allowed"),
        )
        .select_from(m)
        .outerjoin(Membership, Membership.active_user_id == user_id)
        .outerjoin(Organization, Organization.id == Membership.org_id)
        .outerjoin(Allocation, Allocation.membership_id == Membership.id)
        .where(m.name == model, m.enabled.is_(True))
    )


async def reserve(
    ctx: Context,
    user_id: int,
    model: str,
    prompt_tokens: int,
    max_output_tokens: int,
    request_id: str,
    now: datetime,
    hold_ttl_s: int,
) -> Taken | None:
    """The hold, taken in two statements, or None: let the full path decide."""
    async with ctx.uow.statement() as connection:
        row = (await connection.execute(_profile(user_id, model))).one_or_none()
        if row is None or row.org_id is None or not row.allowed:
            return None
        standing = caps.Standing(
            user_id,
            row.org_id,
            None,
            row.timezone,
            row.banned,
            row.paid,
            row.max_inference_tokens,
            row.max_training_tokens,
            row.rate_limit_rpm,
            row.rate_limit_tpm,
        )
        rates = holds.rates_for(
            ModelKind(row.kind), row.input_rate, row.output_rate, row.training_rate
        )
        cap = standing.allocation(rates.kind)
        if standing.banned or not standing.paid or standing.limits.active or cap is None:
            return None
        period = period_of(now, row.timezone)
        amount = holds.worst_case(rates, prompt_tokens, max_output_tokens, row.max_output_tokens)
        expires_at = now + timedelta(seconds=hold_ttl_s)
        taken = Taken(row.org_id, row.id, period, rates, amount, expires_at)
        values = hold_row(
            request_id,
            user_id,
            row.org_id,
            row.id,
            period,
            kind=rates.kind.value,
            amount=amount,
            input_rate=rates.input_rate,
            output_rate=rates.output_rate,
            created_at=now,
            expires_at=expires_at,
        )
        try:
            held = await _take_and_hold(connection, user_id, taken, cap, values)
        except IntegrityError:
            raise duplicate(request_id) from None
    return taken if held else None


async def _take_and_hold(
    connection: AsyncConnection, user_id: int, taken: Taken, cap: int, values: dict[str, Any]
) -> bool:
    key = (user_id, taken.period, taken.rates.kind)
    amount = taken.amount
    take = (
        update(UsageCounter)
        .where(
            *counter_is(key),
            UsageCounter.used + UsageCounter.reserved + amount <= cap,
            caps.bought(taken.org_id, taken.rates.kind, taken.period),
        )
        .values(reserved=UsageCounter.reserved + amount)
    )
    if connection.dialect.name != "postgresql":
        if (await connection.execute(take)).rowcount != 1:
            return False
        await connection.execute(insert(Hold).values(**values))
        return True
    taking = take.returning(UsageCounter.user_id).cte("taken")
    statement = _insert_per_row(Hold.__table__, values, taking).returning(Hold.__table__.c.id)
    return (await connection.execute(statement)).first() is not None


async def settle(ctx: Context, usage: Usage, held: int, now: datetime) -> bool:
    """Book `usage` against its pending hold in one statement (PostgreSQL): claim the hold, add
    the event, move the counter from reserved to used, add to the roll-up. False — nothing
    written — when the hold is not pending or the database is not PostgreSQL."""
    if ctx.uow.engine.dialect.name != "postgresql":
        return False
    claimed = (
        update(Hold)
        .where(Hold.request_id == usage.request_id, Hold.state == HoldState.PENDING.value)
        .values(state=HoldState.SETTLED.value, resolved_at=now)
        .returning(Hold.id)
        .cte("claimed")
    )
    event = _insert_per_row(UsageEvent.__table__, event_row(usage, now), claimed)
    key = (usage.user_id, usage.period, usage.kind)
    counted = (
        update(UsageCounter)
        .where(*counter_is(key), exists(select(claimed.c.id)))
        .values(used=UsageCounter.used + usage.tokens, reserved=UsageCounter.reserved - held)
    )
    keys, increments, extra = rollup_row(usage)
    table = UsageMonthly.__table__
    rolled = _insert_per_row(table, keys | increments | extra, claimed)
    rolled = rolled.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + rolled.excluded[name] for name in increments},
    )
    statement = select(claimed.c.id).add_cte(
        event.cte("event"), counted.cte("counted"), rolled.cte("rolled")
    )
    async with ctx.uow.statement() as connection:
        return (await connection.execute(statement)).first() is not None


def _insert_per_row(table: Table, values: dict[str, Any], source: CTE) -> Insert:
    """INSERT of `values` once per row of `source` (here: once, or not at all)."""
    fields = select(*(literal(value, table.c[name].type) for name, value in values.items()))
    return postgresql.insert(table).from_select(list(values), fields.select_from(source))
