"""Individuals spend from their plan: changes take effect at once, refills last one month,
unpaid months refuse, and joining or leaving an enterprise switches where caps come from."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, update

from quartermaster.domain.errors import PaymentRequired, PermissionDenied, QuotaExceeded
from quartermaster.domain.plans import PlanTerms
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import Role, Term, TokenKind
from quartermaster.services import ledger, plans
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership
from quartermaster.services.metrics import token_window
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import ManualPayments, OfflinePayments
from quartermaster.store.models import AuditEvent, Plan
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT

OPERATOR = Principal.command_line()


def me(user_id: int) -> Principal:
    return Principal(user_id, False, False, "session")


async def spend(ctx: Context, user_id: int, tokens: int, tag: str) -> None:
    """Reserve and settle a chat of `tokens` prompt tokens (the seeded chat rates are 1)."""
    await ledger.reserve(ctx, user_id, CHAT, tokens, 1, tag)
    await ledger.settle(ctx, tag, tokens, 0)


async def cap_now(ctx: Context, user_id: int) -> object:
    window = await token_window.window(ctx, me(user_id))
    tokens = window["tokens"]
    assert isinstance(tokens, dict)
    return tokens["inference"]["cap"]


async def test_a_new_user_spends_from_the_free_plan(ctx: Context) -> None:
    user = await add_user(ctx)
    await spend(ctx, user, 150_000, "first")
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve(ctx, user, CHAT, 60_000, 1, "too-much")
    assert refused.value.details["cap"] == 200_000
    assert refused.value.details["tokens_left"] == 50_000


async def test_changing_plan_mid_month_applies_at_once_and_needs_payment(ctx: Context) -> None:
    user = await add_user(ctx)
    await spend(ctx, user, 150_000, "before")
    await subscriptions.change_plan(ctx, me(user), "plus", Term.MONTHLY)
    with pytest.raises(PermissionDenied) as unpaid:
        await ledger.reserve(ctx, user, CHAT, 100_000, 1, "unpaid")
    assert unpaid.value.code == "plan_unpaid"
    assert "pay" in unpaid.value.message
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-1")
    await spend(ctx, user, 1_000_000, "after")  # plus: 2M this month, the 150k still counts
    assert await cap_now(ctx, user) == 2_000_000
    await subscriptions.change_plan(ctx, me(user), "free", Term.MONTHLY)
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(ctx, user, CHAT, 10, 1, "downgraded")
    async with ctx.uow.begin(write=False) as tx:
        changes = list(
            await tx.session.scalars(
                select(AuditEvent.after).where(AuditEvent.action == "plan.change")
            )
        )
    assert [c["plan"] for c in changes if c] == ["plus", "free"]


async def test_a_refill_lasts_until_the_month_ends(ctx: Context, clock: FixedClock) -> None:
    user = await add_user(ctx)
    payments = OfflinePayments()
    bought = await subscriptions.refill(ctx, me(user), TokenKind.INFERENCE, 2_000_000, payments)
    assert bought["price"] == "90.00"
    assert payments.charges[0].amount == Decimal("90.00")
    assert await cap_now(ctx, user) == 2_200_000
    await spend(ctx, user, 2_100_000, "big")
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    assert await cap_now(ctx, user) == 200_000
    await spend(ctx, user, 199_999, "december")
    window = await token_window.window(ctx, me(user))
    assert window["resets_at"] == "2027-01-01T00:00:00+00:00"
    assert window["refills"] == [
        {
            "period": "2026-11",
            "kind": "inference",
            "tokens": 2_000_000,
            "price": "90.00",
            "currency": "USD",
            "at": "2026-11-15T12:00:00+00:00",
        }
    ]


async def test_refills_need_whole_bundles_and_a_way_to_pay(ctx: Context) -> None:
    user = await add_user(ctx)
    with pytest.raises(PaymentRequired) as manual:
        await subscriptions.refill(ctx, me(user), TokenKind.INFERENCE, 2_000_000, ManualPayments())
    assert "operator" in manual.value.message
    assert await cap_now(ctx, user) == 200_000


async def test_joining_an_enterprise_replaces_the_plan_and_leaving_restores_it(
    ctx: Context,
) -> None:
    org = await add_org(ctx)
    user = await add_user(ctx, "joiner@example.com")
    await subscriptions.change_plan(ctx, me(user), "pro", Term.YEARLY)
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-01", Decimal(900), "INV-2")
    assert await cap_now(ctx, user) == 10_000_000
    await membership.add_member(ctx, OPERATOR, org.org_id, "joiner@example.com", Role.MEMBER)
    window = await token_window.window(ctx, me(user))
    assert window["source"] == "enterprise"
    assert await cap_now(ctx, user) == 200_000  # the org's minimum allocation
    with pytest.raises(PermissionDenied) as member:
        await subscriptions.refill(ctx, me(user), TokenKind.INFERENCE, 2_000_000, OfflinePayments())
    assert member.value.code == "enterprise_member"
    await membership.remove_member(ctx, OPERATOR, org.org_id, user)
    assert await cap_now(ctx, user) == 10_000_000


async def test_seeding_several_default_plans_makes_only_the_first_the_default(
    ctx: Context,
) -> None:
    """A new user's plan is the default one: there is never more than one to pick from."""
    extra = [
        PlanTerms(name, 1_000, 0, Decimal(0), Decimal(0), is_default=True)
        for name in ("starter-a", "starter-b")
    ]
    await plans.seed(ctx, extra)
    defaults = [p.name for p in await plans.list_plans(ctx) if p.is_default]
    assert defaults == ["free"]  # already there: neither new plan takes its place
    async with ctx.uow.begin() as tx:
        await tx.session.execute(update(Plan).values(is_default=False))
        await tx.session.execute(delete(Plan).where(Plan.name.in_(["starter-a", "starter-b"])))
        await tx.commit()
    await plans.seed(ctx, extra)
    assert [p.name for p in await plans.list_plans(ctx) if p.is_default] == ["starter-a"]
