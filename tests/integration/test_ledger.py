"""The ledger as a gateway uses it: hold the worst case, charge what was used, free the rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from quartermaster.domain.errors import Conflict, NotFound, PermissionDenied, QuotaExceeded
from quartermaster.domain.holds import HoldAlreadyResolved
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services import catalog, ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.services.metrics.member_totals import member_totals
from quartermaster.store.models import Hold, Plan, UsageCounter, UsageEvent
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import (
    CHAT,
    EMBEDDING,
    PRICED,
    add_member,
    enable_priced_model,
    new_user,
)

OPERATOR = Principal.command_line()


async def counter(
    ctx: Context, user_id: int, period: str, kind: str = "inference"
) -> tuple[int, int]:
    """(used, reserved) for the member's month, (0, 0) when no row was ever written."""
    async with ctx.uow.begin(write=False) as tx:
        row = (
            await tx.session.execute(
                select(UsageCounter.used, UsageCounter.reserved).where(
                    UsageCounter.user_id == user_id,
                    UsageCounter.period == period,
                    UsageCounter.kind == kind,
                )
            )
        ).one_or_none()
    return (0, 0) if row is None else (row.used, row.reserved)


async def rows_for(ctx: Context, user_id: int) -> tuple[int, int, int]:
    """How many holds, counters and events the member has: all zero after a refusal."""
    async with ctx.uow.begin(write=False) as tx:
        counts = [
            await tx.session.scalar(
                select(func.count()).select_from(table).where(table.user_id == user_id)
            )
            for table in (Hold, UsageCounter, UsageEvent)
        ]
    return (counts[0] or 0, counts[1] or 0, counts[2] or 0)


async def test_settle_charges_the_actual_usage_at_the_rates_the_hold_was_quoted(
    ctx: Context,
) -> None:
    await enable_priced_model(ctx)
    member = await add_member(ctx, inference_cap=10_000)
    receipt = await ledger.reserve(ctx, member.user_id, PRICED, 100, 200, "req-1")
    assert receipt.tokens_held == 150 + 1200
    assert await counter(ctx, member.user_id, "2026-11") == (0, 1350)
    await catalog.update_model(ctx, OPERATOR, PRICED, input_rate="10", output_rate="10")
    settled = await ledger.settle(ctx, "req-1", 101, 50)
    assert settled.tokens_charged == 152 + 300  # ceil(151.5) + 300, at the quoted 1.5 and 6
    assert (settled.input_rate, settled.output_rate) == (Decimal("1.5"), Decimal(6))
    assert settled.overrun == 0
    assert await counter(ctx, member.user_id, "2026-11") == (452, 0)
    assert await check.check(ctx) == []


async def test_usage_above_the_hold_is_charged_and_recorded_as_overrun(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=1_000)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 20, "short-estimate")
    settled = await ledger.settle(ctx, "short-estimate", 40, 20)
    assert (settled.tokens_held, settled.tokens_charged, settled.overrun) == (30, 60, 30)
    async with ctx.uow.begin(write=False) as tx:
        event = await tx.session.scalar(select(UsageEvent))
    assert event is not None
    assert (event.held, event.overrun, event.tokens) == (30, 30, 60)


async def test_a_replayed_settle_returns_the_first_result_and_charges_once(ctx: Context) -> None:
    member = await add_member(ctx)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 100, "once")
    first = await ledger.settle(ctx, "once", 10, 40)
    assert await ledger.settle(ctx, "once", 10, 40) == first
    with pytest.raises(Conflict) as other:
        await ledger.settle(ctx, "once", 10, 41)
    assert other.value.code == "settled_with_different_usage"
    assert await counter(ctx, member.user_id, "2026-11") == (50, 0)


async def test_a_hold_resolves_once(ctx: Context) -> None:
    member = await add_member(ctx)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 100, "gone")
    await ledger.release(ctx, "gone")
    for second in (ledger.release(ctx, "gone"), ledger.settle(ctx, "gone", 1, 1)):
        with pytest.raises(HoldAlreadyResolved) as refused:
            await second
        assert refused.value.code == "hold_already_released"
    assert await counter(ctx, member.user_id, "2026-11") == (0, 0)
    with pytest.raises(NotFound) as missing:
        await ledger.settle(ctx, "never-reserved", 1, 1)
    assert missing.value.code == "hold_not_found"


async def test_a_request_id_holds_once(ctx: Context) -> None:
    member = await add_member(ctx)
    await ledger.reserve(ctx, member.user_id, CHAT, 1, 1, "dup")
    with pytest.raises(Conflict) as duplicate:
        await ledger.reserve(ctx, member.user_id, CHAT, 1, 1, "dup")
    assert duplicate.value.code == "duplicate_request_id"
    assert await counter(ctx, member.user_id, "2026-11") == (0, 2)


async def test_a_hold_that_does_not_fit_is_refused_with_what_is_left(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=500)
    await ledger.reserve(ctx, member.user_id, CHAT, 100, 100, "first")
    await ledger.settle(ctx, "first", 100, 50)
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve(ctx, member.user_id, CHAT, 200, 200, "too-big")
    assert refused.value.code == "insufficient_quota"
    assert refused.value.details["tokens_left"] == 350
    assert refused.value.details["cap"] == 500
    assert refused.value.details["period"] == "2026-11"
    assert await counter(ctx, member.user_id, "2026-11") == (150, 0)
    assert await rows_for(ctx, member.user_id) == (1, 1, 1)


async def test_a_refused_first_call_leaves_nothing_written(ctx: Context) -> None:
    member = await add_member(ctx, training_cap=0)
    with pytest.raises(QuotaExceeded) as refused:
        await ledger.reserve(ctx, member.user_id, EMBEDDING, 10, 0, "no-training")
    assert refused.value.details["tokens_left"] == 0
    assert await rows_for(ctx, member.user_id) == (0, 0, 0)


REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"banned": True}, CHAT, "member_banned"),
    ({"paid": False}, CHAT, "member_unpaid"),
    ({"banned": True, "paid": False}, CHAT, "member_banned"),
    ({"pool": (0, 0)}, CHAT, "no_token_pool"),
    ({"pool": (2_000_000, 0)}, EMBEDDING, "no_token_pool"),
    ({"months": (date(2025, 1, 1), date(2026, 11, 1))}, CHAT, "no_token_pool"),
]


async def test_members_who_may_not_spend_are_refused_before_any_hold(ctx: Context) -> None:
    for flags, model, code in REFUSALS:
        member = await add_member(ctx, **flags)
        with pytest.raises(PermissionDenied) as refused:
            await ledger.reserve(ctx, member.user_id, model, 10, 0, f"refused-{code}")
        assert refused.value.code == code, flags
        assert await rows_for(ctx, member.user_id) == (0, 0, 0)
    loner = await new_user(ctx)
    async with ctx.uow.begin() as tx:  # no default plan: nothing to draw on outside an org
        await tx.session.execute(update(Plan).values(active=False))
        await tx.commit()
    with pytest.raises(PermissionDenied) as refused:
        await ledger.reserve(ctx, loner, CHAT, 1, 1, "loner")
    assert refused.value.code == "no_token_pool"


async def test_disabled_and_unknown_models_are_not_found(ctx: Context) -> None:
    member = await add_member(ctx)
    for name in (PRICED, "no-such-model"):
        with pytest.raises(NotFound) as missing:
            await ledger.reserve(ctx, member.user_id, name, 1, 1, f"r-{name}")
        assert missing.value.code == "model_not_found"


async def test_a_hold_taken_at_the_end_of_a_month_settles_into_that_month(
    ctx: Context, clock: FixedClock
) -> None:
    member = await add_member(ctx, inference_cap=1_000)
    clock.set(datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    receipt = await ledger.reserve(ctx, member.user_id, CHAT, 100, 400, "midnight")
    clock.set(datetime(2026, 11, 1, 0, 1, tzinfo=UTC))
    settled = await ledger.settle(ctx, "midnight", 100, 300)
    assert receipt.period == settled.period == "2026-10"
    assert await counter(ctx, member.user_id, "2026-10") == (400, 0)
    assert await counter(ctx, member.user_id, "2026-11") == (0, 0)
    await ledger.reserve(ctx, member.user_id, CHAT, 100, 400, "new-month")
    assert await counter(ctx, member.user_id, "2026-11") == (0, 500)
    totals = await member_totals(ctx, member.user_id)
    assert totals.month("2026-10") == 400
    assert totals.month("2026-11") == 0


async def test_months_are_counted_in_the_organizations_time_zone(
    ctx: Context, clock: FixedClock
) -> None:
    member = await add_member(ctx, timezone="America/New_York")
    clock.set(datetime(2026, 11, 1, 2, 0, tzinfo=UTC))  # still 31 October, 22:00 in New York
    receipt = await ledger.reserve(ctx, member.user_id, CHAT, 1, 1, "ny")
    assert receipt.period == "2026-10"


async def test_expired_holds_free_their_tokens_and_a_late_settle_still_charges(
    ctx: Context, clock: FixedClock
) -> None:
    member = await add_member(ctx, inference_cap=1_000)
    await ledger.reserve(ctx, member.user_id, CHAT, 100, 500, "slow", hold_ttl_s=60)
    await ledger.reserve(ctx, member.user_id, CHAT, 100, 200, "dead", hold_ttl_s=600)
    clock.advance(seconds=61)
    assert await ledger.sweep_expired(ctx) == 1
    assert await ledger.sweep_expired(ctx) == 0
    assert await counter(ctx, member.user_id, "2026-11") == (0, 300)
    late = await ledger.settle(ctx, "slow", 100, 450)
    assert late.late
    assert late.tokens_charged == 550
    with pytest.raises(HoldAlreadyResolved):
        await ledger.release(ctx, "slow")
    assert await counter(ctx, member.user_id, "2026-11") == (550, 300)
    assert await check.check(ctx) == []


async def test_the_server_sweeper_expires_holds_in_the_background(
    ctx: Context, clock: FixedClock
) -> None:
    member = await add_member(ctx)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "abandoned", hold_ttl_s=1)
    clock.advance(seconds=2)
    sweeper = asyncio.create_task(ledger.run_sweeper(ctx, interval_s=0.01))
    try:
        for _ in range(500):
            if await counter(ctx, member.user_id, "2026-11") == (0, 0):
                break
            await asyncio.sleep(0.01)
    finally:
        sweeper.cancel()
    assert await counter(ctx, member.user_id, "2026-11") == (0, 0)


async def test_totals_come_from_the_rollups_for_both_kinds_and_all_months(
    ctx: Context, clock: FixedClock
) -> None:
    member = await add_member(ctx, inference_cap=5_000, training_cap=5_000)
    for moment, request, model, tokens in (
        (datetime(2026, 10, 3, tzinfo=UTC), "oct-chat", CHAT, 100),
        (datetime(2026, 11, 3, tzinfo=UTC), "nov-chat", CHAT, 40),
        (datetime(2026, 11, 4, tzinfo=UTC), "nov-embed", EMBEDDING, 1_000),
    ):
        clock.set(moment)
        await ledger.reserve(ctx, member.user_id, model, tokens, 0, request)
        await ledger.settle(ctx, request, tokens, 0)
    totals = await member_totals(ctx, member.user_id)
    assert totals.lifetime_tokens == 100 + 40 + 500
    assert totals.month("2026-10") == 100
    assert totals.month("2026-11") == 40
    assert totals.month("2026-11", TokenKind.TRAINING) == 500


async def test_the_check_names_every_broken_invariant(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=3_000_000, pool=(2_000_000, 1_000_000))
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "a")
    await ledger.settle(ctx, "a", 10, 10)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "b")
    async with ctx.uow.begin() as tx:
        await tx.session.execute(
            update(UsageCounter).values(used=UsageCounter.used + 1, reserved=7)
        )
        await tx.commit()
    found = {(d.invariant.value, d.expected, d.found) for d in await check.check(ctx)}
    assert found == {
        ("events_match_counters", 20, 21),
        ("rollups_match_counters", 20, 21),
        ("reserved_matches_pending_holds", 20, 7),
        ("allocations_within_pool", 2_000_000, 3_000_000),
    }
