"""A scenario's world, built through the services, and the rows a reserve writes in it.

Each example of test_reserve_paths_agree.py needs a state of its own that every rule lets the
month's first call through: a fresh member of a fresh org (allocation, pool, model list, rate
limits, time zone) or a fresh individual on a plan, a fresh model and, when the scenario says so,
an API key. It is built the way the product builds it (registration, the enterprise, catalog,
plans and key services), so that the fast path's SQL and the full path's Python read the very
rows they read in production. `World` remembers what was built, so that the changes
(reserve_changes.py) and the comparison can find it again.

The snapshot and the put-back rate windows are here too: they read and write the same rows, and
they let the test ask both paths the same question.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select

from quartermaster.domain import holds
from quartermaster.domain.periods import period_of, shift_period
from quartermaster.domain.plans import PlanTerms
from quartermaster.domain.pool import month_first_day
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind, Term, TokenKind
from quartermaster.services import catalog, ledger, plans
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context
from quartermaster.services.enterprise import model_list, rate_limit_settings
from quartermaster.services.identity import api_keys
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.ledger import fast_reserve, transfers
from quartermaster.services.plans import subscriptions
from quartermaster.store.models import ApiKey, Hold, RateWindow, UsageCounter, User
from quartermaster.store.upsert import insert_missing
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import add_member
from tests.integration.reserve_scenarios import ZONES, Model, Scenario

OPERATOR = Principal.command_line()
CAP = 20_000
"""Every example's starting cap of each kind (allocation or plan)."""
PAID = (Decimal("20.00"), Decimal("200.00"))
_serial = itertools.count()


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


def rid() -> str:
    return f"agree-{next(_serial)}-{uuid.uuid4().hex[:8]}"


def me(user_id: int) -> Principal:
    return Principal(user_id, False, False, "session")


async def write(ctx: Context, *statements: Any) -> None:
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


async def new_plan(ctx: Context, terms: PlanTerms) -> PlanTerms:
    await plans.save(ctx, OPERATOR, terms)
    return terms


def plan_terms(paid: bool, models: tuple[str, ...] | None) -> PlanTerms:
    prices = PAID if paid else (Decimal(0), Decimal(0))
    return PlanTerms(f"agree-plan-{next(_serial)}", CAP, CAP, *prices, models_allowed=models)


async def build(ctx: Context, s: Scenario) -> World:
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
            world.plan = await new_plan(ctx, plan_terms(paid, (name,) if s.listed else None))
            term = Term.YEARLY if s.plan == "yearly" else Term.MONTHLY
            await subscriptions.change_plan(ctx, me(user_id), world.plan.name, term)
            if paid:
                await subscriptions.record_payment(
                    ctx, OPERATOR, user_id, period_of(s.prior_at), PAID[0], f"INV-{rid()}"
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


def call_for(s: Scenario, world: World, prompt: int, max_output: int) -> fast_reserve.Call:
    return fast_reserve.Call(world.user_id, world.model, prompt, max_output, rid(), s.now, 60)


async def prime(ctx: Context, clock: FixedClock, s: Scenario, world: World) -> None:
    """The month's first call (the full path makes the counter row), then, when `remember`,
    one the fast path takes, so that the process holds a guess made before the changes."""
    clock.set(s.prior_at)
    output = 0 if s.model.embedding else 1
    first = await ledger.reserve(ctx, world.user_id, world.model, 1, output, rid())
    if s.prior_usage is None:
        await ledger.release(ctx, first.request_id)
    else:
        await ledger.settle(ctx, first.request_id, *s.prior_usage)
    if s.remember:
        call = replace(call_for(s, world, 1, output), now=s.prior_at)
        quick = await transfers.reserve_quickly(ctx, call)
        assert quick is not None, "setup: the fast path takes a call in the unchanged state"
        if not s.keep_pending:
            await ledger.release(ctx, quick.request_id)


async def revoke(ctx: Context, world: World) -> None:
    async with ctx.uow.begin(write=False) as tx:
        key_id = await tx.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == world.key_hash))
    assert key_id is not None
    await api_keys.revoke(ctx, me(world.user_id), key_id)


async def month_rows(ctx: Context, user_id: int, now: datetime) -> None:
    """The counter rows of the month `now` is in, in any zone, as the month's first call makes
    them (`counters.take`): zero used, zero reserved."""
    async with ctx.uow.begin() as tx:
        for period in sorted({period_of(now, zone) for zone in ZONES}):
            for kind in TokenKind:
                row = {"user_id": user_id, "period": period, "kind": kind.value}
                await insert_missing(tx.session, UsageCounter.__table__, row | {"used": 0})
        await tx.commit()


async def snapshot(ctx: Context, user_id: int) -> Snapshot:
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


async def restore_windows(ctx: Context, user_id: int, before: Snapshot) -> None:
    """A released hold's call stays counted in its minute (it was started); the full path must
    be asked with the minute as the fast path saw it."""
    rows = [
        {"user_id": user_id, "minute": minute, "requests": requests, "tokens": tokens}
        for minute, (requests, tokens) in before.windows.items()
    ]
    statements: list[Any] = [delete(RateWindow).where(RateWindow.user_id == user_id)]
    if rows:
        statements.append(insert(RateWindow).values(rows))
    await write(ctx, *statements)


async def hold_row(ctx: Context, request_id: str) -> dict[str, Any]:
    async with ctx.uow.begin(write=False) as tx:
        row = (
            await tx.session.execute(select(Hold).where(Hold.request_id == request_id))
        ).scalar_one()
        skipped = {"id", "request_id", "state", "resolved_at"}
        return {c.name: getattr(row, c.name) for c in Hold.__table__.c if c.name not in skipped}
