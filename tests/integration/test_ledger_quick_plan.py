"""The reserve's fast path for individuals remembers which plan a user is on, its model list and
its prices; the statement reads the month's cap (plan plus refills) and the payment itself.
Each test first makes two calls: the month's first takes the full path (no counter yet), the
second the fast one, which the process then remembers. Then it changes one thing behind the
gateway's back and calls again: the change must hold from that very call."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal

import pytest
from sqlalchemy import delete

from quartermaster.domain.errors import PermissionDenied, QuotaExceeded
from quartermaster.domain.plans import PlanTerms
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import Role, Term, TokenKind
from quartermaster.services import ledger, membership, plans, subscriptions
from quartermaster.services.context import Context
from quartermaster.services.payments import OfflinePayments
from quartermaster.store.models import PlanPayment
from tests.factories import add_org, add_user
from tests.integration.ledger_fixtures import CHAT, quick_call, remembered

OPERATOR = Principal.command_line()
FREE_PLAN_TOKENS = 200_000
_ids = itertools.count()


def _me(user_id: int) -> Principal:
    return Principal(user_id, False, False, "session")


async def _refused(ctx: Context, user_id: int, prompt_tokens: int = 10) -> Exception:
    with pytest.raises((PermissionDenied, QuotaExceeded)) as refused:
        await ledger.reserve(ctx, user_id, CHAT, prompt_tokens, 20, f"plan-{next(_ids)}")
    return refused.value


async def _edit_free_plan(ctx: Context, **changes: object) -> None:
    free = next(p for p in await plans.list_plans(ctx) if p.name == "free")
    await plans.save(ctx, OPERATOR, dataclasses.replace(free, **changes))


async def test_the_fast_path_holds_exactly_to_the_plan_and_the_months_refills(
    ctx: Context,
) -> None:
    user = await add_user(ctx)
    assert (await remembered(ctx, user)).org_id is None  # 30 + 30 held
    for _ in range(2):
        assert await ledger.reserve_quickly(ctx, quick_call(ctx, user, 99_940)) is not None
    assert await ledger.reserve_quickly(ctx, quick_call(ctx, user, 1)) is None  # 21 over the cap
    refused = await _refused(ctx, user, 1)
    assert refused.details["cap"] == FREE_PLAN_TOKENS
    assert refused.details["tokens_left"] == 20
    await subscriptions.refill(ctx, _me(user), TokenKind.INFERENCE, 2_000_000, OfflinePayments())
    taken = await ledger.reserve_quickly(ctx, quick_call(ctx, user, 1_999_980))
    assert taken is not None
    assert taken.tokens_held == 2_000_000
    assert await ledger.reserve_quickly(ctx, quick_call(ctx, user, 1)) is None


async def test_a_move_to_a_paid_plan_needs_its_payment_from_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    assert (await _refused(ctx, user)).code == "plan_unpaid"
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-P1")
    await ledger.reserve(ctx, user, CHAT, 10, 20, "paid-now")
    assert await ledger.reserve_quickly(ctx, quick_call(ctx, user, 1_500_000)) is not None


async def test_a_withdrawn_payment_refuses_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-P2")
    await remembered(ctx, user)
    await _change_payments(ctx, user)
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def _change_payments(ctx: Context, user_id: int) -> None:
    async with ctx.uow.begin() as tx:
        await tx.session.execute(delete(PlanPayment).where(PlanPayment.user_id == user_id))
        await tx.commit()


async def test_a_plan_whose_list_drops_the_model_refuses_it_at_once(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await _edit_free_plan(ctx, models_allowed=("some-other-model",))
    assert (await _refused(ctx, user)).code == "model_not_allowed"
    await _edit_free_plan(ctx, models_allowed=(CHAT,))
    await ledger.reserve(ctx, user, CHAT, 10, 20, "listed-again")
    assert await ledger.reserve_quickly(ctx, quick_call(ctx, user)) is not None


async def test_a_plan_with_fewer_tokens_caps_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await _edit_free_plan(ctx, monthly_inference_tokens=80)
    refused = await _refused(ctx, user)
    assert refused.code == "insufficient_quota"
    assert refused.details["cap"] == 80


async def test_an_individual_who_joins_an_org_spends_from_its_allocation_next(
    ctx: Context,
) -> None:
    org = await add_org(ctx)
    user = await add_user(ctx, "solo-then-member@example.com")
    await remembered(ctx, user)
    await membership.add_member(
        ctx, OPERATOR, org.org_id, "solo-then-member@example.com", Role.MEMBER
    )
    receipt = await ledger.reserve(ctx, user, CHAT, 10, 20, "as-member")
    assert receipt.org_id == org.org_id


async def test_a_free_plan_that_gets_a_price_needs_a_payment_from_the_next_call(
    ctx: Context,
) -> None:
    trial = PlanTerms("trial", 1_000_000, 0, Decimal(0), Decimal(0))
    await plans.save(ctx, OPERATOR, trial)
    user = await add_user(ctx)
    await subscriptions.change_plan(ctx, _me(user), "trial", Term.MONTHLY)
    await remembered(ctx, user)
    priced = dataclasses.replace(trial, price_monthly=Decimal(5), price_yearly=Decimal(50))
    await plans.save(ctx, OPERATOR, priced)
    assert (await _refused(ctx, user)).code == "plan_unpaid"
