"""The reserve's fast path for individuals remembers which plan a user is on, its model list and
its prices; the statement reads the month's cap (plan plus refills) and the payment itself.
Each test first makes two calls: the month's first takes the full path (no counter yet), the
second the fast one, which the process then remembers. Then it changes one thing behind the
gateway's back and calls again: the change must hold from that very call."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, delete, null, update
from sqlalchemy.sql import Executable

from quartermaster.domain.errors import DomainError, NotFound
from quartermaster.domain.plans import PlanTerms
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import Role, Term, TokenKind
from quartermaster.services import catalog, ledger, plans
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership
from quartermaster.services.identity import api_keys
from quartermaster.services.ledger import fast_reserve, transfers
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import OfflinePayments
from quartermaster.store.models import ApiKey, Plan, PlanPayment
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, quick_call, remembered

OPERATOR = Principal.command_line()
FREE_PLAN_TOKENS = 200_000
FREE_PLAN_TRAINING_TOKENS = 50_000
_ids = itertools.count()


def _me(user_id: int) -> Principal:
    return Principal(user_id, False, False, "session")


async def _refused(
    ctx: Context, user_id: int, prompt_tokens: int = 10, model: str = CHAT
) -> DomainError:
    output = 20 if model == CHAT else 0
    with pytest.raises(DomainError) as refused:
        await ledger.reserve(ctx, user_id, model, prompt_tokens, output, f"plan-{next(_ids)}")
    return refused.value


def _embedding(ctx: Context, user_id: int, tokens: int) -> fast_reserve.Call:
    """An upload of `tokens` to embed (training tokens; the seeded rate is 0.5)."""
    now = ctx.clock.now()
    return fast_reserve.Call(user_id, EMBEDDING, tokens, 0, f"plan-{next(_ids)}", now, 60)


async def _edit_free_plan(ctx: Context, **changes: object) -> None:
    free = next(p for p in await plans.list_plans(ctx) if p.name == "free")
    await plans.save(ctx, OPERATOR, dataclasses.replace(free, **changes))


async def test_the_fast_path_holds_exactly_to_the_plan_and_the_months_refills(
    ctx: Context,
) -> None:
    user = await add_user(ctx)
    assert (await remembered(ctx, user)).org_id is None  # 30 + 30 held
    for _ in range(2):
        assert await transfers.reserve_quickly(ctx, quick_call(ctx, user, 99_940)) is not None
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user, 1)) is None  # 21 over the cap
    refused = await _refused(ctx, user, 1)
    assert refused.details["cap"] == FREE_PLAN_TOKENS
    assert refused.details["tokens_left"] == 20
    await subscriptions.refill(ctx, _me(user), TokenKind.INFERENCE, 2_000_000, OfflinePayments())
    taken = await transfers.reserve_quickly(ctx, quick_call(ctx, user, 1_999_980))
    assert taken is not None
    assert taken.tokens_held == 2_000_000
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user, 1)) is None


async def test_a_move_to_a_paid_plan_needs_its_payment_from_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    assert (await _refused(ctx, user)).code == "plan_unpaid"
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-P1")
    await ledger.reserve(ctx, user, CHAT, 10, 20, "paid-now")
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user, 1_500_000)) is not None


async def test_a_withdrawn_payment_refuses_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-P2")
    await remembered(ctx, user)
    await _change(ctx, delete(PlanPayment).where(PlanPayment.user_id == user))
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def _change(ctx: Context, statement: Executable) -> None:
    async with ctx.uow.begin() as tx:
        await tx.session.execute(statement)
        await tx.commit()


async def test_a_plan_whose_list_drops_the_model_refuses_it_at_once(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await _edit_free_plan(ctx, models_allowed=("some-other-model",))
    assert (await _refused(ctx, user)).code == "model_not_allowed"
    await _edit_free_plan(ctx, models_allowed=(CHAT,))
    await ledger.reserve(ctx, user, CHAT, 10, 20, "listed-again")
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user)) is not None


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


@pytest.mark.parametrize("price", ["price_monthly", "price_yearly"])
async def test_a_free_plan_that_gets_a_price_needs_a_payment_from_the_next_call(
    ctx: Context, price: str
) -> None:
    trial = PlanTerms("trial", 1_000_000, 0, Decimal(0), Decimal(0))
    await plans.save(ctx, OPERATOR, trial)
    user = await add_user(ctx)
    await subscriptions.change_plan(ctx, _me(user), "trial", Term.MONTHLY)
    await remembered(ctx, user)
    await plans.save(ctx, OPERATOR, dataclasses.replace(trial, **{price: Decimal(5)}))
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def test_a_new_default_plan_caps_its_users_from_the_next_call(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    tiny = PlanTerms("tiny", 80, 0, Decimal(0), Decimal(0), is_default=True)
    await plans.save(ctx, OPERATOR, tiny)
    refused = await _refused(ctx, user)
    assert refused.code == "insufficient_quota"
    assert refused.details["cap"] == 80


@pytest.mark.parametrize("month", ["2026-10", "2026-12"])
async def test_a_payment_for_another_month_does_not_pay_for_this_one(
    ctx: Context, month: str
) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    await subscriptions.record_payment(ctx, OPERATOR, user, month, Decimal(20), f"INV-{month}")
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def test_someone_elses_payment_does_not_pay_for_you(ctx: Context) -> None:
    user, other = await add_user(ctx), await add_user(ctx)
    await remembered(ctx, user)
    for each in (user, other):
        await subscriptions.change_plan(ctx, _me(each), "plus", Term.MONTHLY)
    await subscriptions.record_payment(ctx, OPERATOR, other, "2026-11", Decimal(20), "INV-O")
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def test_a_payment_for_the_old_plan_does_not_pay_for_the_new_one(ctx: Context) -> None:
    user = await add_user(ctx)
    await subscriptions.change_plan(ctx, _me(user), "plus", Term.MONTHLY)
    await subscriptions.record_payment(ctx, OPERATOR, user, "2026-11", Decimal(20), "INV-OLD")
    await remembered(ctx, user)
    await subscriptions.change_plan(ctx, _me(user), "pro", Term.MONTHLY)
    assert (await _refused(ctx, user)).code == "plan_unpaid"


async def test_last_months_refill_does_not_raise_this_months_cap(
    ctx: Context, clock: FixedClock
) -> None:
    user = await add_user(ctx)
    november = clock.now()
    clock.set(november.replace(month=10))
    await subscriptions.refill(ctx, _me(user), TokenKind.INFERENCE, 2_000_000, OfflinePayments())
    clock.set(november)
    await remembered(ctx, user)
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user, FREE_PLAN_TOKENS)) is None


async def test_an_embedding_spends_the_plans_training_tokens_which_no_chat_refill_raises(
    ctx: Context,
) -> None:
    user = await add_user(ctx)
    await ledger.reserve(ctx, user, EMBEDDING, 10, 0, f"plan-{next(_ids)}")  # the month's first
    assert await transfers.reserve_quickly(ctx, _embedding(ctx, user, 10)) is not None
    await subscriptions.refill(ctx, _me(user), TokenKind.INFERENCE, 2_000_000, OfflinePayments())
    left = FREE_PLAN_TRAINING_TOKENS - 2 * 5  # two uploads of 10 tokens at 0.5
    assert await transfers.reserve_quickly(ctx, _embedding(ctx, user, 2 * left + 2)) is None
    assert (await _refused(ctx, user, 2 * left + 2, EMBEDDING)).code == "insufficient_quota"
    assert await transfers.reserve_quickly(ctx, _embedding(ctx, user, 2 * left)) is not None


async def test_a_disabled_model_is_refused_to_an_individual_at_once(ctx: Context) -> None:
    user = await add_user(ctx)
    await remembered(ctx, user)
    await catalog.update_model(ctx, OPERATOR, CHAT, enabled=False)
    assert isinstance(await _refused(ctx, user), NotFound)


async def test_a_repriced_model_holds_an_individuals_call_at_the_new_rates(ctx: Context) -> None:
    user = await add_user(ctx)
    first = await remembered(ctx, user)
    await catalog.update_model(ctx, OPERATOR, CHAT, input_rate="2")
    second = await ledger.reserve(ctx, user, CHAT, 10, 20, f"plan-{next(_ids)}")
    assert second.tokens_held == first.tokens_held + 10


async def test_an_individuals_revoked_key_takes_nothing_on_the_fast_path(ctx: Context) -> None:
    user = await add_user(ctx)
    async with ctx.uow.begin() as tx:
        issued = await api_keys.issue(tx.session, user, "k", ctx.clock.now())
        await tx.commit()
    await remembered(ctx, user)
    keyed = dataclasses.replace(quick_call(ctx, user), key_hash=api_keys.key_hash(issued.secret))
    assert await transfers.reserve_quickly(ctx, keyed) is not None
    await _change(ctx, update(ApiKey).values(revoked_at=ctx.clock.now()))
    again = dataclasses.replace(keyed, request_id=f"plan-{next(_ids)}")
    assert await transfers.reserve_quickly(ctx, again) is None


@pytest.mark.parametrize("no_list", [null(), JSON.NULL], ids=["sql null", "json null"])
async def test_a_plan_without_a_model_list_opens_every_model(ctx: Context, no_list: Any) -> None:
    """SQLite and PostgreSQL keep "no list" as SQL NULL or as JSON null; both mean every model."""
    await _change(ctx, update(Plan).where(Plan.name == "free").values(models_allowed=no_list))
    user = await add_user(ctx)
    await remembered(ctx, user)
    assert await transfers.reserve_quickly(ctx, quick_call(ctx, user)) is not None
