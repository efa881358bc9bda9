"""The reserve's two paths decide alike (issue #21).

Every rule a hold obeys is written twice: as SQL in the fast path's one statement
(services/ledger/fast_reserve.py, fast_plan_cap.py) and as Python in the full path
(spending.py, model_rules.py, counters.py, rate_window.py, plans/subscriptions.py,
identity/api_keys.py). The fast path may only ever take a hold the full path would also take,
with the same amount, month and rates; when it takes nothing, the full path must refuse.

Each example builds a state of its own through the services (a fresh member and org, or a fresh
individual on a plan, and a fresh model), makes the month's first call and, usually, one call on
the fast path so that the process remembers a guess, then changes the state behind the guess's
back (bans, unpaid seats, removal, allocations moved, the org's pool, model list, rate limits and
time zone; a plan switched, edited, withdrawn or unpaid, a refill, joining an org; the model
disabled, repriced or capped; the API key revoked, expired or someone else's), at or across a
month boundary in the org's time zone. Then it asks the fast path, puts back whatever that call
wrote, and asks the full path the same question under a fresh request id.

The full path is asked as the gateway asks it after the fast path took nothing
(services/metering.py): a key is authenticated in full first, and a key that turns out to be
another user's counts as a refusal for this user (the gateway would make the call as its owner).
When the fast path took a hold, it is released and the minute's rate window put back as it was
(a released call stays counted), so that the full path sees what the fast path saw.

The one difference the paths are allowed is documented: the fast path answers None for the
month's first call (no counter row yet). The examples make the month's row exist (as the full
path's first call makes it) except when `counter_row` is off, and when the full path takes such a
call the test requires the row to have been missing and the fast path to take the very same hold
once it exists.

Besides the random examples, `CASES` change one thing at a time, each with the outcome it must
have, so that every rule is compared on both databases on every run.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from quartermaster.domain import holds
from quartermaster.domain.errors import DomainError, InvalidInput
from quartermaster.domain.periods import period_of, shift_period
from quartermaster.domain.plans import PlanTerms
from quartermaster.domain.pool import month_first_day
from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits
from quartermaster.domain.types import ModelKind, Role, Term, TokenKind
from quartermaster.services import catalog, ledger, plans
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership, model_list, rate_limit_settings
from quartermaster.services.identity import api_keys
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.ledger import fast_reserve, transfers
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import OfflinePayments
from quartermaster.store.db import create_engine
from quartermaster.store.models import (
    Allocation,
    ApiKey,
    Hold,
    Membership,
    Organization,
    PlanPayment,
    Purchase,
    RateWindow,
    UsageCounter,
    User,
)
from quartermaster.store.uow import UnitOfWork
from quartermaster.store.upsert import insert_missing
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, add_member

OPERATOR = Principal.command_line()
CAP = 20_000
"""Every example's starting cap of each kind (allocation or plan)."""
PAID = (Decimal("20.00"), Decimal("200.00"))
EXAMPLES = 60
_serial = itertools.count()

ZONES = ("UTC", "Pacific/Auckland", "America/Los_Angeles")
MOMENTS = (
    datetime(2026, 11, 15, 12, 0, tzinfo=UTC),  # mid-month everywhere
    datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC),  # November's last instant in UTC
    datetime(2026, 12, 1, 0, 0, tzinfo=UTC),  # December's first in UTC
    datetime(2026, 11, 30, 11, 0, tzinfo=UTC),  # December's first in Auckland (+13)
    datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC),  # November's last second in Los Angeles
    datetime(2026, 12, 1, 8, 0, tzinfo=UTC),  # December's first in Los Angeles (-8)
)
"""When the compared call is made."""
GAPS = (
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(seconds=1),
    timedelta(seconds=61),
    timedelta(hours=12),
    timedelta(days=1),
)
"""How long before it the guess was made: the same minute, the month before, the day before."""
RATES = st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("1.5"), Decimal(3), Decimal(0)])
KEYS = ("none", "valid", "expires later", "expired", "revoked", "another user's", "unknown")
"""The API key passed to the fast path (`Call.key_hash`); "none": the caller was authenticated."""


@dataclass(frozen=True)
class Model:
    embedding: bool
    input_rate: Decimal
    output_rate: Decimal
    training_rate: Decimal
    max_output_tokens: int


@dataclass(frozen=True)
class Change:
    """One thing changed behind the fast path's guess (`value` says how, when it can vary)."""

    what: str
    value: Any = None


ORDER = (
    "model disabled",
    "model repriced",
    "max output lowered",
    "banned",
    "unpaid",
    "org models",
    "rate limits",
    "pool",
    "time zone",
    "plan switched",
    "plan models",
    "plan priced",
    "plan withdrawn",
    "payment",
    "refill",
    "allocation",
    "plan tokens",
    "new default plan",
    "removed from the org",
    "moved to another org",
    "joined an org",
)
"""The order changes are made in: a cap set relative to the call sees the final rates, zone
and plan; leaving or joining an org comes last."""


@dataclass(frozen=True)
class Scenario:
    member: bool
    """An enterprise member (allocation, org pool), else an individual on a plan."""
    model: Model
    zone: str
    """The org's time zone (members)."""
    pool_through_prior_month: bool
    """The org bought its pool only up to the month of the guess (members)."""
    limits: Limits
    """The org's rate limits when the guess is made (members)."""
    plan: str
    """"default" (the seeded free plan), or a plan of the example's own: "free", "monthly" or
    "yearly" (paid for the guess's month, or for twelve months from it)."""
    listed: bool
    """The org's list, or the example's own plan's, names the model (else there is no list:
    every enabled model)."""
    prior_at: datetime
    now: datetime
    prior_usage: tuple[int, int] | None
    """What the month's first call settled at (None: released)."""
    remember: bool
    """The fast path took a call before the changes, so the process holds a guess."""
    keep_pending: bool
    """That call's hold is still pending."""
    changes: tuple[Change, ...]
    prompt_tokens: int
    max_output_tokens: int
    key: str
    counter_row: bool
    """The month's counter row exists for the compared call."""


COMMON_CHANGES = [
    st.just(Change("model disabled")),
    st.builds(Change, st.just("model repriced"), st.tuples(RATES, RATES, RATES)),
    st.builds(Change, st.just("max output lowered"), st.sampled_from([0, 8, 300, 4_096])),
]
SLACK = st.integers(-2, 2)
"""A cap set to exactly the call's worst case on top of the month's usage, plus this."""
MEMBER_CHANGES = [
    st.just(Change("banned")),
    st.just(Change("unpaid")),
    st.just(Change("removed from the org")),
    st.builds(
        Change,
        st.just("allocation"),
        st.one_of(SLACK, st.sampled_from(["zero", "below usage", "raised", "other kind"])),
    ),
    st.builds(Change, st.just("pool"), st.sampled_from(["ended", "none of this kind"])),
    st.builds(Change, st.just("org models"), st.sampled_from(["ours", "another", "every"])),
    st.builds(
        Change,
        st.just("rate limits"),
        st.builds(
            Limits,
            st.sampled_from([None, 1, 2, 3, 50]),
            st.sampled_from([None, 10, 200, 5_000, 100_000]),
        ),
    ),
    st.builds(Change, st.just("time zone"), st.sampled_from(ZONES)),
    st.builds(Change, st.just("moved to another org"), st.sampled_from(ZONES)),
]
INDIVIDUAL_CHANGES = [
    st.builds(Change, st.just("plan switched"), st.sampled_from(["free", "unpaid", "paid"])),
    st.builds(
        Change, st.just("plan models"), st.sampled_from(["ours", "another", "none", "every"])
    ),
    st.builds(Change, st.just("plan tokens"), st.one_of(SLACK, st.just("zero"))),
    st.builds(Change, st.just("plan priced"), st.sampled_from(["monthly", "yearly"])),
    st.just(Change("plan withdrawn")),
    st.builds(
        Change,
        st.just("payment"),
        st.sampled_from(["withdrawn", "for next month only", "for last month only"]),
    ),
    st.builds(Change, st.just("refill"), st.sampled_from(["same kind", "other kind"])),
    st.builds(Change, st.just("joined an org"), st.sampled_from(ZONES)),
    st.builds(Change, st.just("new default plan"), st.one_of(SLACK, st.just("zero"))),
]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    member = draw(st.booleans())
    embedding = draw(st.booleans())
    model = Model(
        embedding,
        draw(RATES),
        draw(RATES),
        draw(RATES),
        draw(st.sampled_from([512, 64])),
    )
    now = draw(st.sampled_from(MOMENTS))
    remember = draw(st.booleans())
    kinds = COMMON_CHANGES + (MEMBER_CHANGES if member else INDIVIDUAL_CHANGES)
    changes = draw(st.lists(st.one_of(kinds), max_size=2, unique_by=lambda c: c.what))
    return Scenario(
        member=member,
        model=model,
        zone=draw(st.sampled_from(ZONES)),
        pool_through_prior_month=draw(st.booleans()),
        limits=Limits(
            draw(st.sampled_from([None, 2, 3, 50])), draw(st.sampled_from([None, 50, 5_000]))
        ),
        plan=draw(st.sampled_from(["default", "free", "monthly", "yearly"])),
        listed=draw(st.booleans()),
        prior_at=now - draw(st.sampled_from(GAPS)),
        now=now,
        prior_usage=draw(st.none() | st.tuples(st.integers(0, 3_000), st.integers(0, 3_000))),
        remember=remember,
        keep_pending=remember and draw(st.booleans()),
        changes=tuple(sorted(changes, key=lambda c: ORDER.index(c.what))),
        prompt_tokens=draw(st.integers(0, 40) | st.integers(-1, 2_500)),
        max_output_tokens=draw(
            st.integers(0, 7).map(lambda n: int(n == 7))  # 1: refused, embeddings have no output
            if embedding
            else st.integers(0, 7).flatmap(lambda n: st.integers(0, 600 if n == 7 else 60))
        ),
        key=draw(st.sampled_from(KEYS)) if draw(st.integers(0, 3)) == 0 else "none",
        counter_row=draw(st.integers(0, 4)) > 0,
    )


@dataclass
class World:
    """What the example built, and what its changes made of it so far."""

    user_id: int
    email: str
    model: str
    kind: TokenKind
    rates: holds.Rates
    max_output_tokens: int
    zone: str
    """The user's months: the org's time zone, or UTC for an individual."""
    org_id: int | None = None
    membership_id: int | None = None
    plan: PlanTerms | None = None
    """The example's own plan the user is on (None: the seeded default plan, or a member)."""
    refilled: int = 0
    secret: str | None = None
    key_hash: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The user's rows a reserve writes: counters by (period, kind), rate windows by minute,
    holds by request id."""

    counters: dict[tuple[str, str], tuple[int, int]]
    windows: dict[int, tuple[int, int]]
    holds: dict[str, str]


def _rid() -> str:
    return f"agree-{next(_serial)}-{uuid.uuid4().hex[:8]}"


def _me(user_id: int) -> Principal:
    return Principal(user_id, False, False, "session")


async def _write(ctx: Context, *statements: Any) -> None:
    async with ctx.uow.begin() as tx:
        for statement in statements:
            await tx.session.execute(statement)
        await tx.commit()


async def _new_user(ctx: Context) -> tuple[int, str]:
    email = f"agree-{next(_serial)}-{uuid.uuid4().hex[:8]}@example.com"
    return await register(ctx, Registration(email, "violet-anchor-99", "", True)), email


async def _new_model(ctx: Context, spec: Model) -> str:
    name = f"agree-model-{next(_serial)}-{uuid.uuid4().hex[:6]}"
    kind = ModelKind.EMBEDDING if spec.embedding else ModelKind.CHAT
    max_output = 0 if spec.embedding else spec.max_output_tokens
    model = catalog.ModelSpec(
        name, kind, "local", name, spec.input_rate, spec.output_rate, spec.training_rate, 8192
    )
    await entries.seed(ctx, [replace(model, max_output_tokens=max_output)])
    return name


async def _new_plan(ctx: Context, terms: PlanTerms) -> PlanTerms:
    await plans.save(ctx, OPERATOR, terms)
    return terms


def _plan_terms(paid: bool, models: tuple[str, ...] | None) -> PlanTerms:
    prices = PAID if paid else (Decimal(0), Decimal(0))
    return PlanTerms(f"agree-plan-{next(_serial)}", CAP, CAP, *prices, models_allowed=models)


async def _build(ctx: Context, s: Scenario) -> World:
    """The state before any change: every rule lets the month's first call through."""
    name = await _new_model(ctx, s.model)
    kind = TokenKind.TRAINING if s.model.embedding else TokenKind.INFERENCE
    model_kind = ModelKind.EMBEDDING if s.model.embedding else ModelKind.CHAT
    rates = holds.rates_for(
        model_kind, s.model.input_rate, s.model.output_rate, s.model.training_rate
    )
    max_output = 0 if s.model.embedding else s.model.max_output_tokens
    if s.member:
        months_end = month_first_day(shift_period(period_of(s.prior_at, s.zone), 1))
        member = await add_member(
            ctx,
            inference_cap=CAP,
            training_cap=CAP,
            timezone=s.zone,
            months=(month_first_day("2026-01"), months_end)
            if s.pool_through_prior_month
            else (month_first_day("2026-01"), month_first_day("2028-01")),
        )
        async with ctx.uow.begin(write=False) as tx:
            email = await tx.session.scalar(select(User.email).where(User.id == member.user_id))
        world = World(member.user_id, str(email), name, kind, rates, max_output, s.zone)
        world.org_id, world.membership_id = member.org_id, member.membership_id
        if s.listed:
            await model_list.set_allowed(ctx, OPERATOR, member.org_id, [name])
        if s.limits.active:
            await rate_limit_settings.set_limits(ctx, OPERATOR, member.org_id, s.limits)
    else:
        user_id, email = await _new_user(ctx)
        world = World(user_id, email, name, kind, rates, max_output, "UTC")
        if s.plan != "default":
            paid = s.plan != "free"
            world.plan = await _new_plan(ctx, _plan_terms(paid, (name,) if s.listed else None))
            term = Term.YEARLY if s.plan == "yearly" else Term.MONTHLY
            await subscriptions.change_plan(ctx, _me(user_id), world.plan.name, term)
            if paid:
                await subscriptions.record_payment(
                    ctx, OPERATOR, user_id, period_of(s.prior_at), PAID[0], f"INV-{_rid()}"
                )
    await _issue_key(ctx, s, world)
    return world


async def _issue_key(ctx: Context, s: Scenario, world: World) -> None:
    if s.key == "none":
        return
    if s.key == "unknown":
        world.secret = api_keys.KEY_PREFIX + uuid.uuid4().hex
        world.key_hash = api_keys.key_hash(world.secret)
        return
    owner = (await _new_user(ctx))[0] if s.key == "another user's" else world.user_id
    expires_at = {"expired": s.now, "expires later": s.now + timedelta(seconds=1)}.get(s.key)
    async with ctx.uow.begin() as tx:
        issued = await api_keys.issue(tx.session, owner, "agree", ctx.clock.now(), expires_at)
        await tx.commit()
    world.secret, world.key_hash = issued.secret, api_keys.key_hash(issued.secret)


def _call(s: Scenario, world: World, prompt: int, max_output: int) -> fast_reserve.Call:
    return fast_reserve.Call(world.user_id, world.model, prompt, max_output, _rid(), s.now, 60)


async def _prime(ctx: Context, clock: FixedClock, s: Scenario, world: World) -> None:
    """The month's first call (the full path makes the counter row), then, when `remember`,
    one the fast path takes, so that the process holds a guess made before the changes."""
    clock.set(s.prior_at)
    output = 0 if s.model.embedding else 1
    first = await ledger.reserve(ctx, world.user_id, world.model, 1, output, _rid())
    if s.prior_usage is None:
        await ledger.release(ctx, first.request_id)
    else:
        await ledger.settle(ctx, first.request_id, *s.prior_usage)
    if s.remember:
        call = replace(_call(s, world, 1, output), now=s.prior_at)
        quick = await transfers.reserve_quickly(ctx, call)
        assert quick is not None, "setup: the fast path takes a call in the unchanged state"
        if not s.keep_pending:
            await ledger.release(ctx, quick.request_id)


async def _usage(ctx: Context, world: World, period: str) -> int:
    async with ctx.uow.begin(write=False) as tx:
        row = (
            await tx.session.execute(
                select(UsageCounter.used, UsageCounter.reserved).where(
                    UsageCounter.user_id == world.user_id,
                    UsageCounter.period == period,
                    UsageCounter.kind == world.kind.value,
                )
            )
        ).one_or_none()
    return 0 if row is None else int(row.used + row.reserved)


def _worst_case(s: Scenario, world: World) -> int | None:
    try:
        return holds.worst_case(
            world.rates, s.prompt_tokens, s.max_output_tokens, world.max_output_tokens
        )
    except InvalidInput:
        return None


async def _exact_cap(ctx: Context, s: Scenario, world: World, slack: int) -> int | None:
    """The cap that fits the compared call with `slack` tokens to spare (negative: short)."""
    amount = _worst_case(s, world)
    if amount is None:
        return None
    used = await _usage(ctx, world, period_of(s.now, world.zone))
    return max(0, used + amount + slack)


async def _set_allocation(ctx: Context, world: World, tokens: int, kind: TokenKind) -> None:
    column = "max_inference_tokens" if kind is TokenKind.INFERENCE else "max_training_tokens"
    await _write(
        ctx,
        update(Allocation)
        .where(Allocation.membership_id == world.membership_id)
        .values({column: tokens}),
    )


async def _allocation(ctx: Context, s: Scenario, world: World, how: int | str) -> None:
    other = TokenKind.TRAINING if world.kind is TokenKind.INFERENCE else TokenKind.INFERENCE
    if how == "other kind":
        await _set_allocation(ctx, world, 0, other)
        return
    used = await _usage(ctx, world, period_of(s.now, world.zone))
    tokens = {"zero": 0, "below usage": max(0, used - 1), "raised": 10 * CAP}.get(str(how))
    if isinstance(how, int):
        tokens = await _exact_cap(ctx, s, world, how)
    if tokens is not None:
        await _set_allocation(ctx, world, tokens, world.kind)


async def _pool(ctx: Context, world: World, how: str) -> None:
    if how == "ended":
        await _write(ctx, delete(Purchase).where(Purchase.org_id == world.org_id))
        return
    column = "inference_tokens" if world.kind is TokenKind.INFERENCE else "training_tokens"
    await _write(ctx, update(Purchase).where(Purchase.org_id == world.org_id).values({column: 0}))


async def _edit_plan(ctx: Context, world: World, **changes: Any) -> None:
    if world.plan is not None:
        world.plan = replace(world.plan, **changes)
        await plans.save(ctx, OPERATOR, world.plan)


async def _switch_plan(ctx: Context, s: Scenario, world: World, how: str) -> None:
    world.plan = await _new_plan(ctx, _plan_terms(how != "free", None))
    await subscriptions.change_plan(ctx, _me(world.user_id), world.plan.name, Term.MONTHLY)
    if how == "paid":
        await subscriptions.record_payment(
            ctx, OPERATOR, world.user_id, period_of(s.now), PAID[0], f"INV-{_rid()}"
        )


async def _plan_tokens(ctx: Context, s: Scenario, world: World, how: int | str) -> dict[str, int]:
    """The plan's monthly tokens of the call's kind: none, or what fits the call with `how`
    to spare on top of the month's usage and refills."""
    tokens = 0 if how == "zero" else await _exact_cap(ctx, s, world, int(how))
    if tokens is None:
        return {}
    column = "inference" if world.kind is TokenKind.INFERENCE else "training"
    return {f"monthly_{column}_tokens": max(0, tokens - world.refilled)}


async def _set_plan_tokens(ctx: Context, s: Scenario, world: World, how: int | str) -> None:
    await _edit_plan(ctx, world, **await _plan_tokens(ctx, s, world, how))


async def _new_default_plan(ctx: Context, s: Scenario, world: World, how: int | str) -> None:
    """A new default plan (its users are everyone without a subscription); `_play` puts the
    seeded one back after the example."""
    terms = replace(_plan_terms(False, None), is_default=True)
    await plans.save(ctx, OPERATOR, replace(terms, **await _plan_tokens(ctx, s, world, how)))


async def _remove(ctx: Context, s: Scenario, world: World) -> None:
    """The member leaves (`membership.remove_member` keeps two members in an org; this one
    has one): the row stays, inactive; the user is an individual again."""
    await _write(
        ctx,
        update(Membership)
        .where(Membership.id == world.membership_id)
        .values(active_user_id=None, removed_at=s.now),
    )
    world.org_id, world.zone = None, "UTC"


async def _move(ctx: Context, s: Scenario, world: World, zone: str) -> None:
    await _remove(ctx, s, world)
    await _join(ctx, world, zone)


async def _join(ctx: Context, world: World, zone: str) -> None:
    org = await add_member(ctx, timezone=zone)  # a fresh org, with a member of its own
    await membership.add_member(ctx, OPERATOR, org.org_id, world.email, Role.MEMBER)
    world.org_id, world.zone = org.org_id, zone


async def _refill(ctx: Context, world: World, which: str) -> None:
    kind = world.kind
    if which == "other kind":
        kind = TokenKind.TRAINING if kind is TokenKind.INFERENCE else TokenKind.INFERENCE
    bundle = 2_000_000 if kind is TokenKind.INFERENCE else 1_000_000
    await subscriptions.refill(ctx, _me(world.user_id), kind, bundle, OfflinePayments())
    if kind is world.kind:
        world.refilled += bundle


async def _payment(ctx: Context, s: Scenario, world: World, how: str) -> None:
    """The user's payments withdrawn, or replaced by one for a month next to this one."""
    await _write(ctx, delete(PlanPayment).where(PlanPayment.user_id == world.user_id))
    if how != "withdrawn":
        month = shift_period(period_of(s.now), 1 if how == "for next month only" else -1)
        reference = f"INV-{_rid()}"
        await subscriptions.record_payment(ctx, OPERATOR, world.user_id, month, PAID[0], reference)


async def _change(ctx: Context, s: Scenario, world: World, change: Change) -> None:
    """Make one change, the way an operator, an admin or the user would."""
    what, value = change.what, change.value
    member_changes: dict[str, Callable[[], Awaitable[object]]] = {
        "banned": lambda: membership.update_member(
            ctx, OPERATOR, world.org_id, world.user_id, membership.MemberChanges(banned=True)
        ),
        "unpaid": lambda: membership.update_member(
            ctx, OPERATOR, world.org_id, world.user_id, membership.MemberChanges(paid=False)
        ),
        "org models": lambda: model_list.set_allowed(
            ctx, OPERATOR, world.org_id, {"ours": [world.model], "another": [CHAT]}.get(value)
        ),
        "rate limits": lambda: rate_limit_settings.set_limits(ctx, OPERATOR, world.org_id, value),
        "time zone": lambda: _write(
            ctx,
            update(Organization).where(Organization.id == world.org_id).values(timezone=value),
        ),
        "pool": lambda: _pool(ctx, world, value),
        "allocation": lambda: _allocation(ctx, s, world, value),
        "removed from the org": lambda: _remove(ctx, s, world),
        "moved to another org": lambda: _move(ctx, s, world, value),
    }
    plan_models = {"ours": (world.model,), "another": (CHAT,), "none": (), "every": None}
    individual_changes: dict[str, Callable[[], Awaitable[object]]] = {
        "plan switched": lambda: _switch_plan(ctx, s, world, value),
        "plan models": lambda: _edit_plan(ctx, world, models_allowed=plan_models[value]),
        "plan tokens": lambda: _set_plan_tokens(ctx, s, world, value),
        "new default plan": lambda: _new_default_plan(ctx, s, world, value),
        "plan priced": lambda: _edit_plan(ctx, world, **{f"price_{value}": Decimal(5)}),
        "plan withdrawn": lambda: _edit_plan(ctx, world, active=False),
        "payment": lambda: _payment(ctx, s, world, value),
        "refill": lambda: _refill(ctx, world, value),
        "joined an org": lambda: _join(ctx, world, value),
    }
    if what == "model disabled":
        await catalog.update_model(ctx, OPERATOR, world.model, enabled=False)
    elif what == "model repriced":
        input_rate, output_rate, training_rate = value
        await catalog.update_model(
            ctx,
            OPERATOR,
            world.model,
            input_rate=input_rate,
            output_rate=output_rate,
            training_rate=training_rate,
        )
        model_kind = ModelKind.EMBEDDING if s.model.embedding else ModelKind.CHAT
        world.rates = holds.rates_for(model_kind, input_rate, output_rate, training_rate)
    elif what == "max output lowered":
        await catalog.update_model(ctx, OPERATOR, world.model, max_output_tokens=value)
        world.max_output_tokens = value
    elif what in member_changes:
        await member_changes[what]()
    else:
        await individual_changes[what]()


async def _revoke(ctx: Context, world: World) -> None:
    async with ctx.uow.begin(write=False) as tx:
        key_id = await tx.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == world.key_hash))
    assert key_id is not None
    await api_keys.revoke(ctx, _me(world.user_id), key_id)


async def _month_rows(ctx: Context, user_id: int, now: datetime) -> None:
    """The counter rows of the month `now` is in, in any zone, as the month's first call makes
    them (`counters.take`): zero used, zero reserved."""
    async with ctx.uow.begin() as tx:
        for period in sorted({period_of(now, zone) for zone in ZONES}):
            for kind in TokenKind:
                row = {"user_id": user_id, "period": period, "kind": kind.value}
                await insert_missing(tx.session, UsageCounter.__table__, row | {"used": 0})
        await tx.commit()


async def _snapshot(ctx: Context, user_id: int) -> Snapshot:
    async with ctx.uow.begin(write=False) as tx:
        session = tx.session
        counters = await session.execute(
            select(
                UsageCounter.period, UsageCounter.kind, UsageCounter.used, UsageCounter.reserved
            ).where(UsageCounter.user_id == user_id)
        )
        windows = await session.execute(
            select(RateWindow.minute, RateWindow.requests, RateWindow.tokens).where(
                RateWindow.user_id == user_id
            )
        )
        held = await session.execute(
            select(Hold.request_id, Hold.state).where(Hold.user_id == user_id)
        )
        return Snapshot(
            {(r.period, r.kind): (r.used, r.reserved) for r in counters},
            {r.minute: (r.requests, r.tokens) for r in windows},
            {r.request_id: r.state for r in held},
        )


async def _restore_windows(ctx: Context, user_id: int, before: Snapshot) -> None:
    """A released hold's call stays counted in its minute (it was started); the full path must
    be asked with the minute as the fast path saw it."""
    rows = [
        {"user_id": user_id, "minute": minute, "requests": requests, "tokens": tokens}
        for minute, (requests, tokens) in before.windows.items()
    ]
    statements: list[Any] = [delete(RateWindow).where(RateWindow.user_id == user_id)]
    if rows:
        statements.append(insert(RateWindow).values(rows))
    await _write(ctx, *statements)


async def _hold_row(ctx: Context, request_id: str) -> dict[str, Any]:
    async with ctx.uow.begin(write=False) as tx:
        row = (
            await tx.session.execute(select(Hold).where(Hold.request_id == request_id))
        ).scalar_one()
        skipped = {"id", "request_id", "state", "resolved_at"}
        return {c.name: getattr(row, c.name) for c in Hold.__table__.c if c.name not in skipped}


class KeyOfAnotherUser(DomainError):
    """The key authenticates someone else: the gateway would make the call as them, never
    charge it to this member."""


async def _fully(ctx: Context, call: fast_reserve.Call, secret: str | None) -> ledger.HoldReceipt:
    """The full path as the gateway takes it after the fast path took nothing: a key is
    authenticated in full first (services/metering.py, `_reserve`)."""
    if secret is not None:
        principal = await api_keys.authenticate(ctx, secret)
        if principal.uid != call.user_id:
            raise KeyOfAnotherUser("the key is another user's", code="another_users_key")
    return await transfers.reserve_fully(ctx, replace(call, key_hash=None, request_id=_rid()))


def _same(fast: ledger.HoldReceipt, full: ledger.HoldReceipt) -> bool:
    return bool(replace(fast, request_id=full.request_id) == full)


async def _compare(ctx: Context, s: Scenario, world: World) -> str:
    """Ask the fast path, then the full path, the same question; returns the outcome."""
    call = replace(_call(s, world, s.prompt_tokens, s.max_output_tokens), key_hash=world.key_hash)
    before = await _snapshot(ctx, world.user_id)
    fast = await transfers.reserve_quickly(ctx, call)
    if fast is not None:
        await ledger.release(ctx, fast.request_id)
        await _restore_windows(ctx, world.user_id, before)
        after = await _snapshot(ctx, world.user_id)
        assert (after.counters, after.windows) == (before.counters, before.windows)
        try:
            full = await _fully(ctx, call, world.secret)
        except DomainError as refused:
            pytest.fail(f"the fast path took {fast} but the full path refuses: {refused!r}")
        assert _same(fast, full), f"fast {fast} != full {full}"
        assert await _hold_row(ctx, fast.request_id) == await _hold_row(ctx, full.request_id)
        return "both took"
    after = await _snapshot(ctx, world.user_id)
    assert call.request_id not in after.holds, "the fast path answered None but wrote a hold"
    assert after == before, "a call the fast path did not take wrote or counted something"
    try:
        full = await _fully(ctx, call, world.secret)
    except DomainError as refused:
        assert await _snapshot(ctx, world.user_id) == before
        note(f"both refused: {refused!r}")
        return f"both refused ({refused.code or type(refused).__name__})"
    # The one documented difference: the month's first call (no counter row) takes the full
    # path. Anything else is a hold the fast path refused and the full path takes.
    assert (full.period, full.kind.value) not in before.counters, (
        f"the fast path took nothing but the full path takes {full}"
    )
    await ledger.release(ctx, full.request_id)
    await _restore_windows(ctx, world.user_id, before)
    again = await transfers.reserve_quickly(ctx, replace(call, request_id=_rid()))
    assert again is not None, "once the month's row exists the fast path takes the call"
    assert _same(again, full), f"fast {again} != full {full}"
    return "month's first call"


async def _play(ctx: Context, clock: FixedClock, s: Scenario) -> str:
    clock.set(s.prior_at)
    world = await _build(ctx, s)
    await _prime(ctx, clock, s, world)
    clock.set(s.now)
    try:
        for change in s.changes:
            await _change(ctx, s, world, change)
        if s.key == "revoked":
            await _revoke(ctx, world)
        if s.counter_row:
            await _month_rows(ctx, world.user_id, s.now)
        return await _compare(ctx, s, world)
    finally:
        if any(change.what == "new default plan" for change in s.changes):
            seeded = next(p for p in plans.default_terms() if p.is_default)
            await plans.save(ctx, OPERATOR, seeded)


OUTCOMES = ("both took", "both refused", "month's first call")

MID_MONTH = datetime(2026, 11, 15, 12, 0, 30, tzinfo=UTC)
NOVEMBER_ENDS = datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC)
DECEMBER_STARTS = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
AUCKLAND_DECEMBER = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
LOS_ANGELES_NOVEMBER = datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC)
BASE = Scenario(
    member=True,
    model=Model(False, Decimal(1), Decimal(1), Decimal(1), 512),
    zone="UTC",
    pool_through_prior_month=False,
    limits=Limits(),
    plan="free",
    listed=False,
    prior_at=MID_MONTH - timedelta(seconds=1),
    now=MID_MONTH,
    prior_usage=None,
    remember=True,
    keep_pending=False,
    changes=(),
    prompt_tokens=10,
    max_output_tokens=20,
    key="none",
    counter_row=True,
)
"""A member in good standing, mid-month, whose process remembers a guess from a second ago; a
chat of 30 tokens (10 + 20 at rates 1) under a cap of 20,000."""
ACROSS_NOVEMBER = {"prior_at": NOVEMBER_ENDS, "now": DECEMBER_STARTS}
EMBEDDING = Model(True, Decimal(1), Decimal(1), Decimal("0.5"), 512)
INDIVIDUAL = {"member": False}


def case(expected: str, *changes: Change, **fields: Any) -> tuple[Scenario, str]:
    return replace(BASE, changes=changes, **fields), expected


TOOK, FIRST = "both took", "month's first call"
CASES = [
    case(TOOK),
    case("both refused (member_banned)", Change("banned")),
    case("both refused (member_unpaid)", Change("unpaid")),
    case(TOOK, Change("removed from the org")),
    case(TOOK, Change("moved to another org", "Pacific/Auckland")),
    case(
        "both refused (insufficient_quota)",
        Change("moved to another org", "UTC"),
        model=EMBEDDING,
        max_output_tokens=0,
    ),
    case(TOOK, Change("allocation", 0)),
    case(TOOK, Change("allocation", 0), keep_pending=True),
    case("both refused (insufficient_quota)", Change("allocation", -1)),
    case("both refused (insufficient_quota)", Change("allocation", -1), keep_pending=True),
    case(
        "both refused (insufficient_quota)",
        Change("allocation", "below usage"),
        prior_usage=(100, 100),
    ),
    case("both refused (insufficient_quota)", Change("allocation", "zero")),
    case(TOOK, Change("allocation", "other kind")),
    case(TOOK, Change("allocation", "raised"), prior_usage=(9_990, 10_000)),
    case("both refused (insufficient_quota)", prior_usage=(9_990, 10_000)),
    case("both refused (no_token_pool)", Change("pool", "ended")),
    case("both refused (no_token_pool)", Change("pool", "none of this kind")),
    case(
        "both refused (no_token_pool)",
        Change("pool", "none of this kind"),
        model=EMBEDDING,
        max_output_tokens=0,
    ),
    case("both refused (model_not_allowed)", Change("org models", "another")),
    case(TOOK, Change("org models", "every"), listed=True),
    case(TOOK, Change("org models", "ours")),
    case(
        "both refused (rate_limit_exceeded)",
        Change("rate limits", Limits(2, None)),
        limits=Limits(50, None),
    ),
    case("both refused (rate_limit_exceeded)", Change("rate limits", Limits(None, 10))),
    case("both refused (rate_limit_exceeded)", limits=Limits(2, None)),
    case(TOOK, Change("rate limits", Limits(3, None)), limits=Limits(2, None)),
    case(TOOK, Change("rate limits", Limits(None, None)), limits=Limits(2, 50)),
    case(
        "both refused (no_token_pool)",
        Change("time zone", "Pacific/Auckland"),
        prior_at=AUCKLAND_DECEMBER - timedelta(seconds=1),
        now=AUCKLAND_DECEMBER,
        pool_through_prior_month=True,
    ),
    case(
        TOOK,
        Change("time zone", "Pacific/Auckland"),
        prior_at=AUCKLAND_DECEMBER - timedelta(seconds=1),
        now=AUCKLAND_DECEMBER,
    ),
    case(
        "both refused (no_token_pool)",
        zone="Pacific/Auckland",
        prior_at=AUCKLAND_DECEMBER - timedelta(microseconds=1),
        now=AUCKLAND_DECEMBER,
        pool_through_prior_month=True,
    ),
    case(
        TOOK,
        zone="America/Los_Angeles",
        prior_at=LOS_ANGELES_NOVEMBER - timedelta(days=1),
        now=LOS_ANGELES_NOVEMBER,
        pool_through_prior_month=True,
    ),
    case("both refused (no_token_pool)", pool_through_prior_month=True, **ACROSS_NOVEMBER),
    case(TOOK, **ACROSS_NOVEMBER),
    case(FIRST, counter_row=False, **ACROSS_NOVEMBER),
    case("both refused (model_not_found)", Change("model disabled")),
    case(TOOK, Change("model repriced", (Decimal(3), Decimal("0.5"), Decimal(1)))),
    case(TOOK, Change("model repriced", (Decimal(3), Decimal(1), Decimal(1)))),
    case(TOOK, Change("model repriced", (Decimal(1), Decimal("0.5"), Decimal(1)))),
    case(
        TOOK,
        Change("model repriced", (Decimal(1), Decimal(1), Decimal(2))),
        model=EMBEDDING,
        max_output_tokens=0,
    ),
    case("both refused (InvalidInput)", Change("max output lowered", 8)),
    case("both refused (InvalidInput)", prompt_tokens=-1),
    case(TOOK, key="valid"),
    case(TOOK, key="expires later"),
    case("both refused (expired_api_key)", key="expired"),
    case("both refused (invalid_api_key)", key="revoked"),
    case("both refused (another_users_key)", key="another user's"),
    case("both refused (invalid_api_key)", key="unknown"),
    case(TOOK, plan="default", **INDIVIDUAL),
    case(TOOK, plan="default", model=EMBEDDING, max_output_tokens=0, **INDIVIDUAL),
    case(TOOK, Change("plan models", "every"), listed=True, **INDIVIDUAL),
    case("both refused (model_not_allowed)", Change("plan models", "another"), **INDIVIDUAL),
    case("both refused (model_not_allowed)", Change("plan models", "none"), **INDIVIDUAL),
    case(TOOK, Change("plan tokens", 0), **INDIVIDUAL),
    case("both refused (insufficient_quota)", Change("plan tokens", -1), **INDIVIDUAL),
    case("both refused (insufficient_quota)", Change("plan tokens", "zero"), **INDIVIDUAL),
    case("both refused (plan_unpaid)", Change("plan priced", "monthly"), **INDIVIDUAL),
    case("both refused (plan_unpaid)", Change("plan priced", "yearly"), **INDIVIDUAL),
    case(TOOK, Change("plan priced", "yearly"), plan="monthly", **INDIVIDUAL),
    case(TOOK, Change("plan switched", "free"), **INDIVIDUAL),
    case(TOOK, Change("plan switched", "paid"), **INDIVIDUAL),
    case("both refused (plan_unpaid)", Change("plan switched", "unpaid"), **INDIVIDUAL),
    case("both refused (plan_unpaid)", plan="monthly", **ACROSS_NOVEMBER, **INDIVIDUAL),
    case(TOOK, plan="yearly", **ACROSS_NOVEMBER, **INDIVIDUAL),
    case(
        "both refused (plan_unpaid)",
        Change("plan switched", "unpaid"),
        plan="monthly",
        **INDIVIDUAL,
    ),
    case(
        "both refused (plan_unpaid)", Change("payment", "withdrawn"), plan="monthly", **INDIVIDUAL
    ),
    case(
        "both refused (plan_unpaid)",
        Change("payment", "for next month only"),
        plan="monthly",
        **INDIVIDUAL,
    ),
    case(
        "both refused (plan_unpaid)",
        Change("payment", "for last month only"),
        plan="monthly",
        **INDIVIDUAL,
    ),
    case(TOOK, Change("refill", "same kind"), **INDIVIDUAL),
    case(TOOK, Change("refill", "same kind"), Change("plan tokens", -1), **INDIVIDUAL),
    case(
        "both refused (insufficient_quota)",
        Change("refill", "other kind"),
        Change("plan tokens", -1),
        **INDIVIDUAL,
    ),
    case(TOOK, Change("plan withdrawn"), **INDIVIDUAL),
    case(TOOK, Change("new default plan", 0), plan="default", **INDIVIDUAL),
    case(
        "both refused (insufficient_quota)",
        Change("new default plan", -1),
        plan="default",
        **INDIVIDUAL,
    ),
    case(TOOK, Change("joined an org", "America/Los_Angeles"), **INDIVIDUAL),
    case("both refused (invalid_api_key)", key="revoked", **INDIVIDUAL),
    case(TOOK, key="valid", plan="monthly", **INDIVIDUAL),
]
"""One change at a time, each with the outcome it must have: every rule is exercised on both
databases on every run, whatever the random examples draw."""
EXPECTED = dict(CASES)


def test_the_fast_and_the_full_path_decide_every_reserve_alike(database_url: str) -> None:
    outcomes: Counter[str] = Counter()
    with asyncio.Runner() as runner:
        engine = create_engine(database_url)
        clock = FixedClock()
        ctx = Context(uow=UnitOfWork(engine), clock=clock)

        def reserve_paths_agree(s: Scenario) -> None:
            note(repr(s))
            outcome = runner.run(_play(ctx, clock, s))
            event(outcome)
            if s in EXPECTED:
                assert outcome == EXPECTED[s]
            else:
                outcomes[next(o for o in OUTCOMES if outcome.startswith(o))] += 1

        for scenario, _ in reversed(CASES):
            reserve_paths_agree = example(scenario)(reserve_paths_agree)
        checked = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(given(scenarios())(reserve_paths_agree))
        try:
            checked()
        finally:
            runner.run(engine.dispose())
    # Not vacuous: the random examples came to both answers (about half each).
    assert outcomes["both took"] >= 5, outcomes
    assert outcomes["both refused"] >= 5, outcomes
