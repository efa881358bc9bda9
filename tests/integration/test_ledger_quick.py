"""The reserve's fast path remembers, per process, a member's org and a model's rates; nothing an
admin or operator changes may slip past it. Each test first makes two calls (the month's first
takes the full path, the second the fast one, which the process then remembers), changes one
thing behind the gateway's back, and reserves again."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, insert, update

from quartermaster.domain.errors import PermissionDenied, QuotaExceeded, TooManyRequests
from quartermaster.services import catalog, ledger
from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys
from quartermaster.services.ledger import fast_reserve, transfers
from quartermaster.store.models import (
    Allocation,
    Membership,
    ModelCatalogEntry,
    Organization,
    OrgModel,
    Purchase,
)
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import (
    CHAT,
    PRICED,
    Member,
    add_member,
    enable_priced_model,
    quick_call,
    remembered,
)

_ids = itertools.count()


async def _reserve(ctx: Context, member: Member, model: str = CHAT) -> ledger.HoldReceipt:
    receipt = await ledger.reserve(ctx, member.user_id, model, 10, 20, f"quick-{next(_ids)}")
    assert receipt.user_id == member.user_id
    return receipt


async def _change(ctx: Context, *statements: object) -> None:
    async with ctx.uow.begin() as tx:
        for statement in statements:
            await tx.session.execute(statement)  # type: ignore[call-overload]
        await tx.commit()


Change = Callable[[Member], object]
REFUSALS: dict[str, tuple[Change, type[Exception], str]] = {
    "banned": (
        lambda m: update(Membership).where(Membership.id == m.membership_id).values(banned=True),
        PermissionDenied,
        "member_banned",
    ),
    "unpaid": (
        lambda m: update(Membership).where(Membership.id == m.membership_id).values(paid=False),
        PermissionDenied,
        "member_unpaid",
    ),
    "allocation lowered": (
        lambda m: (
            update(Allocation)
            .where(Allocation.membership_id == m.membership_id)
            .values(max_inference_tokens=25)
        ),
        QuotaExceeded,
        "insufficient_quota",
    ),
    "pool ended": (
        lambda m: delete(Purchase).where(Purchase.org_id == m.org_id),
        PermissionDenied,
        "no_token_pool",
    ),
}


@pytest.mark.parametrize("change", REFUSALS, ids=list(REFUSALS))
async def test_a_change_that_refuses_the_member_holds_from_the_next_call(
    ctx: Context, change: str
) -> None:
    member = await add_member(ctx, inference_cap=1_000)
    await remembered(ctx, member.user_id)
    statement, error, code = REFUSALS[change]
    await _change(ctx, statement(member))
    with pytest.raises(error) as refused:
        await _reserve(ctx, member)
    assert refused.value.code == code


async def test_a_member_who_left_the_org_draws_on_their_own_plan_next(ctx: Context) -> None:
    member = await add_member(ctx)
    assert (await remembered(ctx, member.user_id)).org_id == member.org_id
    await _change(
        ctx,
        update(Membership).where(Membership.id == member.membership_id).values(active_user_id=None),
    )
    assert (await _reserve(ctx, member)).org_id is None


async def test_a_model_taken_off_the_orgs_list_is_refused_at_once(ctx: Context) -> None:
    member = await add_member(ctx)
    await enable_priced_model(ctx)
    await remembered(ctx, member.user_id)
    async with ctx.uow.begin(write=False) as tx:
        priced = await catalog.enabled_model(tx.session, PRICED)
    await _change(ctx, insert(OrgModel).values(org_id=member.org_id, model_id=priced.id))
    with pytest.raises(PermissionDenied) as refused:
        await _reserve(ctx, member)
    assert refused.value.code == "model_not_allowed"


async def test_a_repriced_model_holds_at_the_new_rates(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=100_000)
    first = await remembered(ctx, member.user_id)
    await _change(
        ctx,
        update(ModelCatalogEntry)
        .where(ModelCatalogEntry.name == CHAT)
        .values(input_rate=Decimal(3), output_rate=Decimal(5)),
    )
    second = await _reserve(ctx, member)
    assert (second.rates.input_rate, second.rates.output_rate) == (Decimal(3), Decimal(5))
    assert second.tokens_held == 10 * 3 + 20 * 5 != first.tokens_held


async def test_rate_limits_set_after_a_call_apply_to_the_next(ctx: Context) -> None:
    member = await add_member(ctx)
    await remembered(ctx, member.user_id)  # "no rate limits"
    await _change(
        ctx,
        update(Organization).where(Organization.id == member.org_id).values(rate_limit_rpm=1),
    )
    await _reserve(ctx, member)  # the first call of the minute under the new limit
    with pytest.raises(TooManyRequests):
        await _reserve(ctx, member)


@pytest.mark.parametrize("clock", [FixedClock(datetime(2026, 11, 30, 20, 0, tzinfo=UTC))])
async def test_a_new_time_zone_moves_the_next_hold_into_its_month(ctx: Context) -> None:
    member = await add_member(ctx, months=(date(2026, 1, 1), date(2028, 1, 1)))
    assert (await remembered(ctx, member.user_id)).period == "2026-11"
    await _change(
        ctx,
        update(Organization)
        .where(Organization.id == member.org_id)
        .values(timezone="Pacific/Auckland"),
    )
    assert (await _reserve(ctx, member)).period == "2026-12"


async def test_unchanged_members_keep_reserving_and_the_counter_adds_up(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=1_000)
    receipts = [await _reserve(ctx, member) for _ in range(5)]
    assert sum(r.tokens_held for r in receipts) == 5 * 30
    held = sum(r.tokens_held for r in receipts)
    while held + 30 <= 1_000:
        held += (await _reserve(ctx, member)).tokens_held
    with pytest.raises(QuotaExceeded):
        await _reserve(ctx, member)


async def test_a_key_is_honoured_only_for_its_own_member(ctx: Context) -> None:
    """The statement takes a hold for a remembered key only while the key is its member's."""
    owner, other = await add_member(ctx), await add_member(ctx)
    async with ctx.uow.begin() as tx:
        issued = await api_keys.issue(tx.session, owner.user_id, "k", ctx.clock.now())
        await tx.commit()
    hashed = api_keys.key_hash(issued.secret)

    def call(member: Member) -> fast_reserve.Call:
        return replace(quick_call(ctx, member.user_id), key_hash=hashed)

    for member in (owner, other):
        await remembered(ctx, member.user_id)
    assert await transfers.reserve_quickly(ctx, call(other)) is None
    assert await transfers.reserve_quickly(ctx, call(owner)) is not None
