"""A scenario's changes, made to its world behind the fast path's guess.

Each `Change` of reserve_scenarios.py is made the way an operator, an org admin or the user
would make it (through the services, or as the row a service would write where none exists
yet), after the guess and before the compared call. Caps set relative to the call ("allocation",
"plan tokens", "new default plan" with a number) are computed from the call's worst case and the
month's usage, so that a cap lands exactly on the boundary, a few tokens either side, where the
two paths are most likely to disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from quartermaster.domain import holds
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import period_of, shift_period
from quartermaster.domain.types import ModelKind, Role, Term, TokenKind
from quartermaster.services import catalog, plans
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership, model_list, rate_limit_settings
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import OfflinePayments
from quartermaster.store.models import (
    Allocation,
    Membership,
    Organization,
    PlanPayment,
    Purchase,
    UsageCounter,
)
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.reserve_scenarios import Change, Scenario
from tests.integration.reserve_world import (
    CAP,
    OPERATOR,
    PAID,
    World,
    me,
    new_plan,
    plan_terms,
    rid,
    write,
)


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
    await write(
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
        await write(ctx, delete(Purchase).where(Purchase.org_id == world.org_id))
        return
    column = "inference_tokens" if world.kind is TokenKind.INFERENCE else "training_tokens"
    await write(ctx, update(Purchase).where(Purchase.org_id == world.org_id).values({column: 0}))


async def _edit_plan(ctx: Context, world: World, **changes: Any) -> None:
    if world.plan is not None:
        world.plan = replace(world.plan, **changes)
        await plans.save(ctx, OPERATOR, world.plan)


async def _switch_plan(ctx: Context, s: Scenario, world: World, how: str) -> None:
    world.plan = await new_plan(ctx, plan_terms(how != "free", None))
    await subscriptions.change_plan(ctx, me(world.user_id), world.plan.name, Term.MONTHLY)
    if how == "paid":
        await subscriptions.record_payment(
            ctx, OPERATOR, world.user_id, period_of(s.now), PAID[0], f"INV-{rid()}"
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
    """A new default plan (its users are everyone without a subscription); the test's `_play`
    puts the seeded one back after the example."""
    terms = replace(plan_terms(False, None), is_default=True)
    await plans.save(ctx, OPERATOR, replace(terms, **await _plan_tokens(ctx, s, world, how)))


async def _remove(ctx: Context, s: Scenario, world: World) -> None:
    """The member leaves (`membership.remove_member` keeps two members in an org; this one
    has one): the row stays, inactive; the user is an individual again."""
    await write(
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
    await subscriptions.refill(ctx, me(world.user_id), kind, bundle, OfflinePayments())
    if kind is world.kind:
        world.refilled += bundle


async def _payment(ctx: Context, s: Scenario, world: World, how: str) -> None:
    """The user's payments withdrawn, or replaced by one for a month next to this one."""
    await write(ctx, delete(PlanPayment).where(PlanPayment.user_id == world.user_id))
    if how != "withdrawn":
        month = shift_period(period_of(s.now), 1 if how == "for next month only" else -1)
        reference = f"INV-{rid()}"
        await subscriptions.record_payment(ctx, OPERATOR, world.user_id, month, PAID[0], reference)


async def make_change(ctx: Context, s: Scenario, world: World, change: Change) -> None:
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
        "time zone": lambda: write(
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
