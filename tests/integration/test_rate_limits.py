"""Per-member rate limits hold per clock minute, in every process, and count only what the
reserve really took."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest

from quartermaster.domain.errors import QuotaExceeded, TooManyRequests
from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.enterprise import rate_limit_settings
from quartermaster.services.ledger import fast_reserve, spending, transfers
from quartermaster.store.db import create_engine
from quartermaster.store.models import Organization
from quartermaster.store.uow import UnitOfWork
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, add_member

OPERATOR = Principal.command_line()


async def _limited(ctx: Context, limits: Limits, cap: int = 100_000) -> int:
    member = await add_member(ctx, inference_cap=cap)
    await rate_limit_settings.set_limits(ctx, OPERATOR, member.org_id, limits)
    return member.user_id


async def test_calls_per_minute_are_limited_until_the_next_minute(
    ctx: Context, clock: FixedClock
) -> None:
    user = await _limited(ctx, Limits(requests_per_minute=2))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "a")
    await ledger.reserve(ctx, user, CHAT, 10, 10, "b")
    with pytest.raises(TooManyRequests) as refused:
        await ledger.reserve(ctx, user, CHAT, 10, 10, "c")
    assert refused.value.code == "rate_limit_exceeded"
    assert 0 < refused.value.details["retry_after_s"] <= 60
    clock.advance(seconds=60)
    await ledger.reserve(ctx, user, CHAT, 10, 10, "d")


async def test_tokens_per_minute_count_the_reserved_worst_case(ctx: Context) -> None:
    user = await _limited(ctx, Limits(tokens_per_minute=1_000))
    await ledger.reserve(ctx, user, CHAT, 300, 300, "first")  # holds 600
    with pytest.raises(TooManyRequests):
        await ledger.reserve(ctx, user, CHAT, 300, 300, "second")
    await ledger.reserve(ctx, user, CHAT, 200, 200, "third")  # 400 more fits exactly
    with pytest.raises(TooManyRequests, match="lower max_tokens"):
        await ledger.reserve(ctx, user, CHAT, 1_000, 500, "never")


async def test_a_call_refused_for_quota_does_not_use_up_the_rate(ctx: Context) -> None:
    user = await _limited(ctx, Limits(requests_per_minute=1), cap=50)
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(ctx, user, CHAT, 100, 100, "too-big")
    await ledger.reserve(ctx, user, CHAT, 10, 10, "fits")


def _call(ctx: Context, user_id: int, request_id: str, tokens: int = 10) -> fast_reserve.Call:
    return fast_reserve.Call(user_id, CHAT, tokens, tokens, request_id, ctx.clock.now(), 60)


async def test_a_limited_members_calls_are_counted_on_the_fast_path(ctx: Context) -> None:
    """After the month's first call, a limited member's calls take the one-statement path too,
    and each is counted into the minute there."""
    user = await _limited(ctx, Limits(requests_per_minute=3))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "first")  # the month's first: the full path
    assert await transfers.reserve_quickly(ctx, _call(ctx, user, "second")) is not None
    assert await transfers.reserve_quickly(ctx, _call(ctx, user, "third")) is not None
    assert await transfers.reserve_quickly(ctx, _call(ctx, user, "fourth")) is None
    with pytest.raises(TooManyRequests):
        await ledger.reserve(ctx, user, CHAT, 10, 10, "fourth")


async def test_a_call_the_fast_path_does_not_take_is_not_counted(ctx: Context) -> None:
    """Counting and holding are one transaction: a call refused for quota leaves the minute's
    count as it was."""
    user = await _limited(ctx, Limits(requests_per_minute=3), cap=50)
    await ledger.reserve(ctx, user, CHAT, 10, 10, "first")  # the month's first: the full path
    await ledger.reserve(ctx, user, CHAT, 5, 5, "second")  # 2 of 3, on the fast path
    assert await transfers.reserve_quickly(ctx, _call(ctx, user, "too-big", 100)) is None
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(ctx, user, CHAT, 100, 100, "too-big")
    await ledger.reserve(ctx, user, CHAT, 1, 1, "third")  # 3 of 3
    with pytest.raises(TooManyRequests):
        await ledger.reserve(ctx, user, CHAT, 1, 1, "fourth")


async def _set_behind_the_fast_paths_back(ctx: Context, user_id: int, limits: Limits) -> None:
    async with ctx.uow.begin() as tx:
        standing = await spending.standing_of(tx.session, user_id)
        org = await tx.session.get(Organization, standing.org_id)
        assert org is not None
        org.rate_limit_rpm, org.rate_limit_tpm = (
            limits.requests_per_minute,
            limits.tokens_per_minute,
        )
        await tx.commit()


@pytest.mark.parametrize("lowered", [Limits(requests_per_minute=2), Limits(tokens_per_minute=50)])
async def test_lowered_limits_apply_to_the_next_call_on_the_fast_path(
    ctx: Context, lowered: Limits
) -> None:
    """The fast path remembers the limits; the statement checks them, so a stale memory never
    lets a call through at the old limits, nor counts the try it rejects."""
    user = await _limited(ctx, Limits(requests_per_minute=10, tokens_per_minute=1_000))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "first")  # the month's first: the full path
    await ledger.reserve(ctx, user, CHAT, 10, 10, "second")  # remembered: 10 calls, 1,000 tokens
    await _set_behind_the_fast_paths_back(ctx, user, lowered)
    with pytest.raises(TooManyRequests):  # 3 calls, or 60 tokens, are past the new limits
        await ledger.reserve(ctx, user, CHAT, 10, 10, "third")
    await _set_behind_the_fast_paths_back(ctx, user, Limits(requests_per_minute=3))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "fourth")  # 3 of 3: the refused try counted none
    with pytest.raises(TooManyRequests):
        await ledger.reserve(ctx, user, CHAT, 10, 10, "fifth")


async def test_raised_limits_apply_to_the_next_call_on_the_fast_path(ctx: Context) -> None:
    user = await _limited(ctx, Limits(requests_per_minute=2))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "first")  # the month's first: the full path
    await ledger.reserve(ctx, user, CHAT, 10, 10, "second")  # remembered: 2 a minute, both used
    await _set_behind_the_fast_paths_back(ctx, user, Limits(requests_per_minute=3))
    await ledger.reserve(ctx, user, CHAT, 10, 10, "third")
    with pytest.raises(TooManyRequests):
        await ledger.reserve(ctx, user, CHAT, 10, 10, "fourth")


def _burst(url: str, user_id: int, prefix: str, start_at: float) -> int:
    async def main() -> int:
        engine = create_engine(url, pool_size=1)
        ctx = Context(uow=UnitOfWork(engine), clock=FixedClock())
        passed = 0
        try:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            for attempt in range(15):
                try:
                    await ledger.reserve(ctx, user_id, CHAT, 1, 1, f"{prefix}-{attempt}")
                except TooManyRequests:
                    continue
                passed += 1
        finally:
            await engine.dispose()
        return passed

    return asyncio.run(main())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_limit_holds_across_processes(ctx: Context, database_url: str) -> None:
    user = await _limited(ctx, Limits(requests_per_minute=20))
    start_at = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        jobs = [(database_url, user, f"p{i}", start_at) for i in range(4)]
        passed = await asyncio.to_thread(pool.starmap, _burst, jobs)
    assert sum(passed) == 20  # 60 attempts in one minute from four processes; exactly 20 pass
