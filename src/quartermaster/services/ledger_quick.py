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
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from quartermaster.domain import holds
from quartermaster.domain.periods import period_of
from quartermaster.domain.pool import month_first_day
from quartermaster.domain.types import HoldState, ModelKind, TokenKind
from quartermaster.services import caps
from quartermaster.services.context import Context
from quartermaster.services.ledger_rows import Usage, duplicate, event_row, hold_row, rollup_row
from quartermaster.services.model_access import org_allows
from quartermaster.store import hot
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


def _bound(table: Table, names: list[str] | tuple[str, ...]) -> Select[Any]:
    """One row of bound parameters named (and typed) after `table`'s columns."""
    return select(*(bindparam(f"b_{name}", type_=table.c[name].type) for name in names))


def _params(values: dict[str, Any]) -> dict[str, Any]:
    """Bound names carry a prefix: SQLAlchemy reserves a column's own name in INSERT/UPDATE."""
    return {f"b_{name}": value for name, value in values.items()}


def _counter_is() -> list[ColumnElement[bool]]:
    return [
        UsageCounter.user_id == bindparam("b_user_id"),
        UsageCounter.period == bindparam("b_period"),
        UsageCounter.kind == bindparam("b_kind"),
    ]


@cache
def _profile() -> Select[Any]:
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
        .outerjoin(Membership, Membership.active_user_id == bindparam("b_user_id"))
        .outerjoin(Organization, Organization.id == Membership.org_id)
        .outerjoin(Allocation, Allocation.membership_id == Membership.id)
        .where(m.name == bindparam("b_model"), m.enabled.is_(True))
    )


@cache
def _take(kind: TokenKind) -> Update:
    """The reserve's conditional UPDATE: it fits under the cap, and the org's pool has tokens
    of this kind for the month."""
    amount = bindparam("b_amount", type_=BigInteger)
    return (
        update(UsageCounter)
        .where(
            *_counter_is(),
            UsageCounter.used + UsageCounter.reserved + amount <= bindparam("b_cap"),
            caps.bought(bindparam("b_org_id"), kind, bindparam("b_first_day", type_=Date)),
        )
        .values(reserved=UsageCounter.reserved + amount)
    )


@cache
def _take_and_hold(kind: TokenKind) -> Insert:
    """PostgreSQL: the UPDATE and the hold's INSERT as one data-modifying statement."""
    taking = _take(kind).returning(UsageCounter.user_id).cte("taken")
    table = Hold.__table__
    held = _bound(table, HOLD_FIELDS).select_from(taking)
    return postgresql.insert(table).from_select(list(HOLD_FIELDS), held).returning(table.c.id)


HOLD_FIELDS = (
    "request_id",
    "user_id",
    "org_id",
    "model_id",
    "period",
    "state",
    "kind",
    "amount",
    "input_rate",
    "output_rate",
    "created_at",
    "expires_at",
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
    async with hot.connect(ctx.uow) as connection:
        row = await connection.first(_profile(), _params({"user_id": user_id, "model": model}))
        if row is None or row["org_id"] is None or not row["allowed"]:
            return None
        standing = caps.Standing(
            user_id,
            row["org_id"],
            None,
            row["timezone"],
            row["banned"],
            row["paid"],
            row["max_inference_tokens"],
            row["max_training_tokens"],
            row["rate_limit_rpm"],
            row["rate_limit_tpm"],
        )
        rates = holds.rates_for(
            ModelKind(row["kind"]), row["input_rate"], row["output_rate"], row["training_rate"]
        )
        cap = standing.allocation(rates.kind)
        if standing.banned or not standing.paid or standing.limits.active or cap is None:
            return None
        period = period_of(now, standing.timezone)
        amount = holds.worst_case(rates, prompt_tokens, max_output_tokens, row["max_output_tokens"])
        expires_at = now + timedelta(seconds=hold_ttl_s)
        model_id = row["id"]
        values = hold_row(
            request_id,
            user_id,
            standing.org_id,
            model_id,
            period,
            kind=rates.kind.value,
            amount=amount,
            input_rate=rates.input_rate,
            output_rate=rates.output_rate,
            created_at=now,
            expires_at=expires_at,
        )
        taking = values | {"cap": cap, "first_day": month_first_day(period)}
        try:
            held = await _held(connection, rates.kind, values, _params(taking))
        except IntegrityError:
            raise duplicate(request_id) from None
    return Taken(row["org_id"], model_id, period, rates, amount, expires_at) if held else None


async def _held(
    connection: hot.HotConnection, kind: TokenKind, hold: dict[str, Any], params: dict[str, Any]
) -> bool:
    if connection.is_postgresql:
        return await connection.first(_take_and_hold(kind), params) is not None
    if await connection.execute(_take(kind), params) != 1:
        return False
    await connection.execute(insert(Hold).values(**hold), {})
    return True


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
    events = UsageEvent.__table__
    event = postgresql.insert(events).from_select(
        EVENT_FIELDS, _bound(events, EVENT_FIELDS).select_from(claimed)
    )
    counted = (
        update(UsageCounter)
        .where(*_counter_is(), exists(select(claimed.c.id)))
        .values(
            used=UsageCounter.used + bindparam("b_tokens"),
            reserved=UsageCounter.reserved - bindparam("b_held"),
        )
    )
    table = UsageMonthly.__table__
    rolled = postgresql.insert(table).from_select(
        ROLLUP_FIELDS, _bound(table, ROLLUP_FIELDS).select_from(claimed)
    )
    rolled = rolled.on_conflict_do_update(
        index_elements=["rollup_key"],
        set_={name: table.c[name] + rolled.excluded[name] for name in ("tokens", "requests")},
    )
    return select(claimed.c.id).add_cte(
        event.cte("event"), counted.cte("counted"), rolled.cte("rolled")
    )


EVENT_FIELDS = [c.name for c in UsageEvent.__table__.c if c.name != "id"]
ROLLUP_FIELDS = [c.name for c in UsageMonthly.__table__.c if c.name != "id"]


async def settle(ctx: Context, usage: Usage, held: int, now: datetime) -> bool:
    """Book `usage` against its pending hold in one statement (PostgreSQL). False — nothing
    written — when the hold is not pending or the database is not PostgreSQL."""
    if ctx.uow.engine.dialect.name != "postgresql":
        return False
    keys, increments, extra = rollup_row(usage)
    params = event_row(usage, now) | keys | increments | extra
    async with hot.connect(ctx.uow) as connection:
        return await connection.first(_settle(), _params(params)) is not None
