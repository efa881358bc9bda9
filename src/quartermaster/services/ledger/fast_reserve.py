"""The reserve's fast path: one statement, most of the time.

A reserve must know a few things before it can write: the member's org and its time zone (which
month the hold counts in), and the model's rates (how much to hold). They change rarely, so each
process keeps them per member and model (`Guess`). The statement that takes the hold re-checks
every one of them against the database, and every rule the full path applies: the membership is
active, not banned, paid; the model is enabled, allowed by the org's list, still at the guessed
rates; the org's rate limits are still the guessed ones and it bought tokens of this kind for the
month (`spending.bought`); and the worst case fits under the allocation as it is now (read in the
statement itself). Then it adds to the counter and inserts the hold — one data-modifying
statement on PostgreSQL (atomic in autocommit), one BEGIN IMMEDIATE transaction on SQLite. A
stale guess only means the statement takes nothing: the guess is read afresh and tried once more.

An org with rate limits adds one step: the call is first counted into the member's window for
the minute (`rate_window.counted`, the full path's own upsert; on PostgreSQL a part of the same
statement), in a transaction rolled back when no hold is taken, so a call that does not go is
never counted.

An individual on a plan (outside any org) takes the same statement with the plan's cap in place
of the allocation: the process remembers only which plan, its model list and its prices, and the
statement computes the month's cap from the rows (services/ledger/fast_plan_cap.py).

Anything that still does not go through — every refusal, the month's first call (no counter row
yet) — answers None, and `ledger.reserve` runs the full path, which applies every rule with its
own message. So this path can only ever take a hold the full path would also take.

A chat whose API key nothing has read for this call (services/identity/known_keys.py) passes the
key's hash: the statement then also checks the key, and a None sends the caller back to authenticate
in full before the full path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Date,
    Insert,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from quartermaster.domain import holds
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import period_of
from quartermaster.domain.pool import month_first_day
from quartermaster.domain.rate_limits import Limits
from quartermaster.domain.routes import Route
from quartermaster.domain.types import ModelKind, TokenKind
from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys
from quartermaster.services.ledger import fast_plan_cap, rate_window, spending
from quartermaster.services.ledger.counters import fits_under
from quartermaster.services.ledger.model_rules import org_allows
from quartermaster.services.ledger.rows import Planned, duplicate, hold_row
from quartermaster.services.ledger.sql import bound, counter_is_bound, model_columns, params
from quartermaster.store import hot
from quartermaster.store.models import (
    Allocation,
    ApiKey,
    Hold,
    Membership,
    ModelCatalogEntry,
    Organization,
    UsageCounter,
)
from quartermaster.store.models.base import table_of

MAX_GUESSES = 50_000
"""Per process; past it the guesses start over (each costs one read to make again)."""


@dataclass(frozen=True)
class Guess:
    """What a reserve needs to know before its statement; the statement checks all of it."""

    org_id: int | None
    """None: an individual, spending from `plan` in UTC months."""
    timezone: str
    model_id: int
    kind: str
    input_rate: Decimal
    output_rate: Decimal
    training_rate: Decimal
    max_output_tokens: int
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None
    plan: fast_plan_cap.PlanGuess | None = None

    @property
    def rates(self) -> holds.Rates:
        return holds.rates_for(
            ModelKind(self.kind), self.input_rate, self.output_rate, self.training_rate
        )

    @property
    def limits(self) -> Limits:
        return Limits(self.rate_limit_rpm, self.rate_limit_tpm)


@dataclass(frozen=True)
class Taken:
    """A hold the fast path wrote."""

    owner: Planned
    rates: holds.Rates
    amount: int
    expires_at: datetime


@dataclass(frozen=True)
class Call:
    user_id: int
    model: str
    prompt_tokens: int
    max_output_tokens: int
    request_id: str
    now: datetime
    hold_ttl_s: int
    key_hash: str | None = None
    """The caller's API key when nothing has checked it for this call
    (services/identity/known_keys.py): the statement then takes the hold only while the key is still
    valid and the member's."""
    choices: int = 1
    """Answers the call asks for (a chat's `n`); each may be `max_output_tokens` long."""
    route: Route = Route.CHAT
    """Where the call came in, written on its hold."""


class _Guesses(dict[tuple[int, str], Guess]):
    """The process's guesses by (user id, model name), kept on the Context's memory."""


@cache
def _guess_query() -> Select[Any]:
    m = ModelCatalogEntry
    return (
        select(
            Membership.org_id,
            Organization.timezone,
            Organization.rate_limit_rpm,
            Organization.rate_limit_tpm,
            *model_columns(),
        )
        .select_from(m)
        .join(Membership, Membership.active_user_id == bindparam("b_user_id"))
        .join(Organization, Organization.id == Membership.org_id)
        .where(m.name == bindparam("b_model"), m.enabled.is_(True))
    )


def _members_cap(kind: TokenKind) -> list[ColumnElement[bool]]:
    """A member's worst case fits under their allocation, and the org is as guessed: same time
    zone and rate limits, the model on its list, tokens of this kind bought for the month."""
    amount = bindparam("b_amount", type_=BigInteger)
    org_id = bindparam("b_org_id", type_=BigInteger)
    allocated = (
        Allocation.max_inference_tokens
        if kind is TokenKind.INFERENCE
        else Allocation.max_training_tokens
    )
    cap = (
        select(allocated)
        .join(Membership, Membership.id == Allocation.membership_id)
        .where(
            Membership.active_user_id == bindparam("b_user_id"),
            Membership.org_id == org_id,
            *spending.in_good_standing(),
        )
        .scalar_subquery()
    )
    org_unchanged = exists().where(
        Organization.id == org_id,
        Organization.timezone == bindparam("b_timezone"),
        Organization.rate_limit_rpm.is_not_distinct_from(bindparam("b_guess_rpm", type_=Integer)),
        Organization.rate_limit_tpm.is_not_distinct_from(
            bindparam("b_guess_tpm", type_=BigInteger)
        ),
    )
    return [
        fits_under(amount, cap),
        org_unchanged,
        org_allows(org_id, bindparam("b_model_id", type_=BigInteger)),
        spending.bought(org_id, kind, bindparam("b_first_day", type_=Date)),
    ]


def _individuals_cap(kind: TokenKind) -> list[ColumnElement[bool]]:
    """An individual's worst case fits under their plan's cap for the month, on the guessed
    plan, and they have joined no org (services/ledger/fast_plan_cap.py)."""
    amount = bindparam("b_amount", type_=BigInteger)
    return [
        fits_under(amount, fast_plan_cap.cap(kind)),
        ~fast_plan_cap.is_member(),
    ]


def _model_unchanged() -> ColumnElement[bool]:
    m = ModelCatalogEntry
    return exists().where(
        m.id == bindparam("b_model_id"),
        m.enabled.is_(True),
        m.kind == bindparam("b_model_kind"),
        m.input_rate == bindparam("b_guess_input_rate", type_=m.input_rate.type),
        m.output_rate == bindparam("b_guess_output_rate", type_=m.output_rate.type),
        m.training_rate == bindparam("b_guess_training_rate", type_=m.training_rate.type),
        m.max_output_tokens == bindparam("b_max_output_tokens"),
    )


@cache
def _take(kind: TokenKind, keyed: bool, individual: bool) -> Update:
    """The conditional UPDATE of the counter, with every check of the guess (and of the
    caller's key, when `keyed`)."""
    fits = and_(
        *(_individuals_cap(kind) if individual else _members_cap(kind)),
        _model_unchanged(),
        *([api_keys.still_valid(_KEY_HASH, _USER_ID, _KEY_CHECKED_AT)] if keyed else []),
    )
    amount = bindparam("b_amount", type_=BigInteger)
    return (
        update(UsageCounter)
        .where(*counter_is_bound(), fits)
        .values(reserved=UsageCounter.reserved + amount)
    )


HOLD_FIELDS = [c.name for c in table_of(Hold).c if c.name not in ("id", "resolved_at")]
"""Every column a new hold has; `hold_row` must give each one (store/hot.py refuses a gap)."""


_KEY_HASH: BindParameter[str] = bindparam("b_key_hash")
_USER_ID: BindParameter[int] = bindparam("b_user_id")
_KEY_CHECKED_AT = bindparam("b_key_checked_at", type_=ApiKey.expires_at.type)


class Shape(NamedTuple):
    """Which statement a call takes: its kind of tokens, whether it checks the caller's key,
    and whether the cap is an individual's plan rather than a member's allocation."""

    kind: TokenKind
    keyed: bool
    individual: bool


@cache
def _take_and_hold(shape: Shape, counted: bool = False) -> Insert:
    """PostgreSQL: the UPDATE and the hold's INSERT as one data-modifying statement; when
    `counted`, only after the call is counted into its minute's window, in the same statement
    (which must then run in a transaction: a window counted for a hold not taken is undone)."""
    take = _take(*shape)
    if counted:
        counting = rate_window.counted("postgresql").cte("counted")
        take = take.where(exists(select(counting.c.requests)))
    taking = take.returning(UsageCounter.user_id).cte("taken")
    table = table_of(Hold)
    held = bound(table, HOLD_FIELDS).select_from(taking)
    taken = postgresql.insert(table).from_select(HOLD_FIELDS, held)
    return taken.returning(table.c.id)


async def reserve(ctx: Context, call: Call) -> Taken | None:
    """The hold, taken in one statement (two when the guess is new or stale), or None."""
    guesses = ctx.memory.part(_Guesses)
    key = (call.user_id, call.model)
    async with hot.connect(ctx.uow) as connection:
        guess = guesses.pop(key, None)
        taken = None if guess is None else await _try(connection, guess, call)
        if taken is None:
            guess = await _fresh_guess(connection, call)
            taken = None if guess is None else await _try(connection, guess, call)
    if taken is not None and guess is not None:
        if len(guesses) >= MAX_GUESSES:
            guesses.clear()
        guesses[key] = guess
    return taken


MODEL_FIELDS = tuple(column.name for column in model_columns())
MEMBER_FIELDS = ("org_id", "timezone", *MODEL_FIELDS, "rate_limit_rpm", "rate_limit_tpm")


async def _fresh_guess(connection: hot.HotConnection, call: Call) -> Guess | None:
    """What to try with: the member's org, else the individual's plan; None when the user is
    on neither, the model is not enabled, or the plan does not name it."""
    whose = params({"user_id": call.user_id, "model": call.model})
    found = await connection.first(_guess_query(), whose)
    if found is not None:
        return Guess(**{name: found[name] for name in MEMBER_FIELDS})
    found = await connection.first(fast_plan_cap.guess_query(), whose)
    if found is None:
        return None
    plan = fast_plan_cap.PlanGuess(
        found["plan_id"], found["models_text"], found["price_monthly"], found["price_yearly"]
    )
    if not plan.allows(call.model):
        return None  # the full path refuses it, naming the plan's list
    model = {name: found[name] for name in MODEL_FIELDS}
    return Guess(None, "UTC", **model, rate_limit_rpm=None, rate_limit_tpm=None, plan=plan)


def _checks(guess: Guess, period: str) -> dict[str, Any]:
    """The guess as the statement's parameters, for it to check against the rows."""
    checks = {
        "model_kind": guess.kind,
        "guess_input_rate": guess.input_rate,
        "guess_output_rate": guess.output_rate,
        "guess_training_rate": guess.training_rate,
        "max_output_tokens": guess.max_output_tokens,
    }
    if guess.plan is not None:
        plan = guess.plan
        return checks | {
            "plan_id": plan.plan_id,
            "plan_models": plan.models_text,
            "plan_price_monthly": plan.price_monthly,
            "plan_price_yearly": plan.price_yearly,
            "plan_free": plan.free,
        }
    return checks | {
        "timezone": guess.timezone,
        "guess_rpm": guess.rate_limit_rpm,
        "guess_tpm": guess.rate_limit_tpm,
        "first_day": month_first_day(period),
    }


async def _try(connection: hot.HotConnection, guess: Guess, call: Call) -> Taken | None:
    rates = guess.rates
    try:
        amount = holds.worst_case(
            rates,
            call.prompt_tokens,
            call.max_output_tokens,
            guess.max_output_tokens,
            call.choices,
        )
    except InvalidInput:
        return None  # perhaps only by the guess: the full path says so if it is true
    if not rate_window.fits_a_window(guess.limits, amount):
        return None  # the full path refuses it, with the limit in the message
    period = period_of(call.now, guess.timezone)
    expires_at = call.now + timedelta(seconds=call.hold_ttl_s)
    planned = Planned(call.user_id, guess.org_id, guess.model_id, period, call.route)
    hold = hold_row(call.request_id, planned, rates, amount, call.now, expires_at)
    checks = _checks(guess, period)
    if call.key_hash is not None:
        checks |= {"key_hash": call.key_hash, "key_checked_at": call.now}
    bound = params(hold | checks)
    shape = Shape(rates.kind, call.key_hash is not None, guess.plan is not None)
    try:
        if guess.limits.active:
            window = rate_window.window_params(call.user_id, guess.limits, amount, call.now)
            held = await _counted_and_held(connection, shape, hold, bound | window)
        else:
            held = await _held(connection, shape, hold, bound)
    except IntegrityError:
        raise duplicate(call.request_id) from None
    return Taken(planned, rates, amount, expires_at) if held else None


async def _counted_and_held(
    connection: hot.HotConnection, shape: Shape, hold: dict[str, Any], bound: dict[str, Any]
) -> bool:
    """A member under rate limits: the call counted into the minute and the hold taken, in one
    transaction, or neither (a window that is full leaves the refusal to the full path)."""
    async with connection.atomic() as undo:
        if connection.is_postgresql:
            held = await connection.first(_take_and_hold(shape, counted=True), bound) is not None
        else:
            counted = await connection.first(rate_window.counted("sqlite"), bound) is not None
            held = counted and await _held(connection, shape, hold, bound)
        if not held:
            undo.request()
    return held


async def _held(
    connection: hot.HotConnection, shape: Shape, hold: dict[str, Any], bound: dict[str, Any]
) -> bool:
    if connection.is_postgresql:
        return await connection.first(_take_and_hold(shape), bound) is not None
    if await connection.execute(_take(*shape), bound) != 1:
        return False
    await connection.execute(insert(Hold).values(**hold), {})
    return True
