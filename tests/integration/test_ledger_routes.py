"""A call's route rides its hold to its usage event and its monthly roll-up, on either reserve
path and every way a hold settles; the upstream's usage details are stored beside the counts,
refused when they cannot be parts of them, and never change the charge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.routes import Route
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import check, transfers
from quartermaster.store.models import Hold, UsageEvent, UsageMonthly
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import (
    CHAT,
    EMBEDDING,
    add_member,
    quick_call,
    remembered,
)
from tests.integration.test_ledger import counter

TRAINING = {Route.EMBEDDINGS, Route.DATASETS, Route.SEARCH}


async def routes_of(ctx: Context, request_id: str) -> tuple[str, str | None]:
    """The route on the hold, and on its usage event (None before it is settled)."""
    async with ctx.uow.begin(write=False) as tx:
        held = await tx.session.scalar(select(Hold.route).where(Hold.request_id == request_id))
        booked = await tx.session.scalar(
            select(UsageEvent.route).where(UsageEvent.request_id == request_id)
        )
    assert held is not None
    return held, booked


async def rollups(ctx: Context, user_id: int) -> dict[str, tuple[int, int]]:
    """The member's roll-ups by route: (tokens, requests); each key ends in its route."""
    async with ctx.uow.begin(write=False) as tx:
        rows = (
            await tx.session.scalars(select(UsageMonthly).where(UsageMonthly.user_id == user_id))
        ).all()
    assert all(row.rollup_key.endswith(f":{row.route}") for row in rows)
    return {row.route: (row.tokens, row.requests) for row in rows}


async def event(ctx: Context, request_id: str) -> UsageEvent:
    async with ctx.uow.begin(write=False) as tx:
        found = await tx.session.scalar(
            select(UsageEvent).where(UsageEvent.request_id == request_id)
        )
    assert found is not None
    return found


async def test_every_route_is_written_on_the_hold_the_event_and_the_roll_up(
    ctx: Context,
) -> None:
    member = await add_member(ctx, inference_cap=10_000, training_cap=10_000)
    for route in Route:
        model, prompt, output = (EMBEDDING, 30, 0) if route in TRAINING else (CHAT, 10, 20)
        receipt = await ledger.reserve(
            ctx, member.user_id, model, prompt, output, f"by-{route}", route=route
        )
        assert receipt.route is route
        assert await routes_of(ctx, f"by-{route}") == (route, None)
        await ledger.settle_hold(ctx, receipt, prompt, output // 2)
        assert await routes_of(ctx, f"by-{route}") == (route, route)
    chat, training = (10 + 10, 1), (15, 1)  # the embedding model's training rate is 0.5
    assert await rollups(ctx, member.user_id) == {
        route: training if route in TRAINING else chat for route in Route
    }
    assert await check.check(ctx) == []


async def test_a_hold_is_chat_unless_its_caller_names_another_route(ctx: Context) -> None:
    member = await add_member(ctx)
    receipt = await ledger.reserve(ctx, member.user_id, CHAT, 1, 1, "unnamed")
    assert receipt.route is Route.CHAT
    assert await routes_of(ctx, "unnamed") == (Route.CHAT, None)


async def test_both_reserve_paths_write_the_route_and_both_settle_paths_book_it(
    ctx: Context,
) -> None:
    member = await add_member(ctx, inference_cap=10_000)
    await remembered(ctx, member.user_id)  # the process now has a guess for the fast path
    fast_call = replace(quick_call(ctx, member.user_id), route=Route.MESSAGES)
    fast = await transfers.reserve_quickly(ctx, fast_call)
    assert fast is not None
    assert fast.route is Route.MESSAGES
    full_call = replace(quick_call(ctx, member.user_id), route=Route.RESPONSES)
    full = await transfers.reserve_fully(ctx, full_call)
    assert full.route is Route.RESPONSES
    await ledger.settle(ctx, fast.request_id, 10, 5)  # the full settlement, by request id
    await ledger.settle_hold(ctx, full, 10, 5)  # one statement on PostgreSQL
    assert await routes_of(ctx, fast.request_id) == (Route.MESSAGES, Route.MESSAGES)
    assert await routes_of(ctx, full.request_id) == (Route.RESPONSES, Route.RESPONSES)
    by_route = await rollups(ctx, member.user_id)
    assert (by_route[Route.MESSAGES], by_route[Route.RESPONSES]) == ((15, 1), (15, 1))
    assert await check.check(ctx) == []


async def test_a_late_settlement_books_by_its_holds_route(ctx: Context, clock: FixedClock) -> None:
    member = await add_member(ctx)
    receipt = await ledger.reserve(
        ctx, member.user_id, CHAT, 10, 10, "late", hold_ttl_s=1, route=Route.COMPLETIONS
    )
    clock.advance(seconds=2)
    assert await ledger.sweep_expired(ctx) == 1
    settled = await ledger.settle_hold(ctx, receipt, 10, 10, cached_tokens=4)
    assert settled.late
    booked = await event(ctx, "late")
    assert (booked.route, booked.status, booked.cached_tokens) == ("completions", "late", 4)
    assert await rollups(ctx, member.user_id) == {Route.COMPLETIONS: (20, 1)}
    assert await check.check(ctx) == []


async def test_usage_details_are_stored_and_never_change_the_charge(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=10_000)
    plain = await ledger.reserve(ctx, member.user_id, CHAT, 40, 20, "plain")
    detailed = await ledger.reserve(ctx, member.user_id, CHAT, 40, 20, "detailed")
    without = await ledger.settle_hold(ctx, plain, 40, 20)
    details = {"cached_tokens": 40, "reasoning_tokens": 20}
    settled = await ledger.settle_hold(ctx, detailed, 40, 20, **details)
    assert settled.tokens_charged == without.tokens_charged == 60
    booked = await event(ctx, "detailed")
    assert (booked.cached_tokens, booked.reasoning_tokens) == (40, 20)
    assert ((await event(ctx, "plain")).cached_tokens, booked.prompt_tokens) == (0, 40)
    await ledger.reserve(ctx, member.user_id, CHAT, 40, 20, "by-id")
    await ledger.settle(ctx, "by-id", 30, 10, cached_tokens=12, reasoning_tokens=3)
    booked = await event(ctx, "by-id")
    assert (booked.cached_tokens, booked.reasoning_tokens) == (12, 3)
    assert await counter(ctx, member.user_id, "2026-11") == (60 + 60 + 40, 0)


async def test_a_replay_must_report_the_same_details(ctx: Context) -> None:
    member = await add_member(ctx)
    receipt = await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "twice")
    first = await ledger.settle_hold(ctx, receipt, 10, 10, cached_tokens=5)
    assert await ledger.settle_hold(ctx, receipt, 10, 10, cached_tokens=5) == first
    with pytest.raises(Conflict) as other:
        await ledger.settle(ctx, "twice", 10, 10)
    assert other.value.code == "settled_with_different_usage"
    assert other.value.details["cached_tokens"] == 5
    assert await counter(ctx, member.user_id, "2026-11") == (20, 0)


@pytest.mark.parametrize(
    "details",
    [
        {"cached_tokens": -1},
        {"reasoning_tokens": -1},
        {"cached_tokens": 11},
        {"reasoning_tokens": 6},
    ],
)
async def test_details_that_cannot_be_parts_of_their_totals_are_refused(
    ctx: Context, details: dict[str, Any]
) -> None:
    member = await add_member(ctx)
    receipt = await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "odd")
    for settling in (
        ledger.settle_hold(ctx, receipt, 10, 5, **details),
        ledger.settle(ctx, "odd", 10, 5, **details),
    ):
        with pytest.raises(InvalidInput) as refused:
            await settling
        assert refused.value.param == "usage"
        assert next(iter(details)) in str(refused.value)
    assert await counter(ctx, member.user_id, "2026-11") == (0, 20)
    await ledger.settle_hold(ctx, receipt, 10, 5, cached_tokens=10, reasoning_tokens=5)
    assert await counter(ctx, member.user_id, "2026-11") == (15, 0)


async def test_the_check_finds_a_roll_up_under_another_route_than_its_events(
    ctx: Context,
) -> None:
    member = await add_member(ctx)
    for route in (Route.CHAT, Route.MESSAGES):
        receipt = await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, f"{route}", route=route)
        await ledger.settle_hold(ctx, receipt, 10, 10)
    async with ctx.uow.begin() as tx:
        await tx.session.execute(
            update(UsageMonthly)
            .where(UsageMonthly.route == Route.MESSAGES.value)
            .values(route=Route.RESPONSES.value)
        )
        await tx.commit()
    found = {(d.invariant.value, d.where.split(":", 5)[-1]) for d in await check.check(ctx)}
    assert found == {
        ("rollups_match_events", "messages"),
        ("rollups_match_events", "responses"),
        ("rollups_match_events", "messages:requests"),
        ("rollups_match_events", "responses:requests"),
    }
