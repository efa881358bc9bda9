"""Caps hold under concurrency: many tasks on SQLite, many OS processes on PostgreSQL, all
firing far more holds than the cap allows. Each hold settles at exactly its amount, so the
number that got through must be exactly cap // amount, never one more."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest

from quartermaster.domain.errors import QuotaExceeded
from quartermaster.domain.types import TokenKind
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import check, counters, fast_reserve, transfers
from quartermaster.store.db import create_engine
from quartermaster.store.models import UsageCounter
from quartermaster.store.uow import UnitOfWork
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, Member, add_member
from tests.integration.test_ledger import counter

CAP = 3_000
PROMPT, OUTPUT = 40, 60  # a hold of 100 at the seeded rates of 1 and 1
ATTEMPTS = 80  # per worker: several times what the cap allows


async def spend(ctx: Context, user_id: int, prefix: str) -> int:
    """Reserve and settle in full until refused `ATTEMPTS` times or done; returns successes."""
    done = 0
    for attempt in range(ATTEMPTS):
        request_id = f"{prefix}-{attempt}"
        try:
            await ledger.reserve(ctx, user_id, CHAT, PROMPT, OUTPUT, request_id)
        except QuotaExceeded:
            continue
        await ledger.settle(ctx, request_id, PROMPT, OUTPUT)
        done += 1
    return done


def spend_in_process(url: str, user_id: int, prefix: str, start_at: float) -> int:
    """One OS process; all of them start spending at `start_at`, so their reserves overlap."""

    async def main() -> int:
        engine = create_engine(url, pool_size=1)
        try:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            return await spend(Context(uow=UnitOfWork(engine), clock=FixedClock()), user_id, prefix)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def assert_cap_held(ctx: Context, user_id: int, successes: int) -> None:
    used, reserved = await counter(ctx, user_id, "2026-11")
    assert successes == CAP // (PROMPT + OUTPUT)
    assert (used, reserved) == (CAP, 0)
    assert await check.check(ctx) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_concurrent_tasks_never_push_a_member_over_the_cap(ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=CAP)
    results = await asyncio.gather(*(spend(ctx, member.user_id, f"t{i}") for i in range(8)))
    await assert_cap_held(ctx, member.user_id, sum(results))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_processes_never_push_a_member_over_the_cap(
    ctx: Context, database_url: str
) -> None:
    member = await add_member(ctx, inference_cap=CAP)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(6) as pool:
        start_at = time.time() + 2.0
        work = [(database_url, member.user_id, f"p{i}", start_at) for i in range(6)]
        results = await asyncio.to_thread(pool.starmap, spend_in_process, work)
    await assert_cap_held(ctx, member.user_id, sum(results))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_months_first_calls_at_once_all_go_through(ctx: Context) -> None:
    """A member's first calls of a month, all at once, each make or find the counter row; none
    is refused for a row another one committed meanwhile (the cap is far away)."""
    members = [await add_member(ctx, inference_cap=1_000_000) for _ in range(4)]
    calls = [
        ledger.reserve(ctx, member.user_id, CHAT, PROMPT, OUTPUT, f"first-{index}-{call}")
        for index, member in enumerate(members)
        for call in range(16)
    ]
    await asyncio.gather(*calls)
    for member in members:
        assert await counter(ctx, member.user_id, "2026-11") == (0, 16 * (PROMPT + OUTPUT))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_counter_row_committed_during_the_reserve_is_not_a_refusal(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race behind the test above, made certain: the reserve's UPDATE finds no row, then a
    concurrent first call commits one before the reserve looks again."""
    member = await add_member(ctx, inference_cap=1_000)
    real_fits = counters._fits
    raced: list[bool] = []

    async def fits_while_another_call_commits_the_row(*args: object) -> bool:
        fitted = await real_fits(*args)  # type: ignore[arg-type]
        if not raced:
            raced.append(fitted)
            await _commit_counter_row(ctx, member)
        return fitted

    monkeypatch.setattr(counters, "_fits", fits_while_another_call_commits_the_row)
    await transfers.reserve_fully(ctx, _call(ctx, member, "raced"))
    assert raced == [False]  # the first UPDATE did miss the row
    assert await counter(ctx, member.user_id, "2026-11") == (0, PROMPT + OUTPUT)


async def _commit_counter_row(ctx: Context, member: Member) -> None:
    async with ctx.uow.begin() as tx:
        key = {"user_id": member.user_id, "period": "2026-11", "kind": TokenKind.INFERENCE.value}
        tx.session.add(UsageCounter(**key, used=0, reserved=0))
        await tx.commit()


def _call(ctx: Context, member: Member, request_id: str) -> fast_reserve.Call:
    now = ctx.clock.now()
    return fast_reserve.Call(member.user_id, CHAT, PROMPT, OUTPUT, request_id, now, 600)
