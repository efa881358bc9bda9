"""On PostgreSQL: the fast path's hold and settlement commit without waiting for the disk, for
their own transaction only, tagged with their server; the barrier puts them on disk."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import Integer, column, table, text, update

from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.store import hot, wal_flush
from quartermaster.store.models import Organization
from tests.integration.ledger_fixtures import add_member, remembered
from tests.integration.test_hot import _postgresql_only
from tests.integration.test_ledger_quick import _change

PROBE = table("flush_probe", column("id", Integer), column("n", Integer))
TOUCHED = (
    update(PROBE)
    .where(PROBE.c.id == 1, wal_flush.ASYNC_COMMIT)
    .values(n=PROBE.c.n + 1)
    .returning(text("current_setting('synchronous_commit') AS committing"))
)
LSN = text("SELECT pg_current_wal_insert_lsn() AS written, pg_current_wal_flush_lsn() AS flushed")
SETTING = text("SELECT current_setting('synchronous_commit') AS now")


async def _probe_table(ctx: Context) -> None:
    async with ctx.uow.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE flush_probe (id int PRIMARY KEY, n int)"))
        await connection.execute(text("INSERT INTO flush_probe VALUES (1, 0)"))


async def _server_started(ctx: Context) -> datetime:
    async with hot.connect(ctx.uow) as connection:
        row = await connection.first(text("SELECT pg_postmaster_start_time() AS t"), {})
    assert row is not None
    return row["t"]


@pytest.mark.parametrize(("flush_behind", "committing"), [(True, "off"), (False, "on")])
async def test_a_statement_with_the_condition_commits_without_waiting_and_only_itself(
    ctx: Context, flush_behind: bool, committing: str
) -> None:
    """Settlements and every other write on the same pooled connection still wait for the
    disk: the setting is the statement's transaction's, not the session's. Turned off, the
    statement keeps the session's own setting."""
    _postgresql_only(ctx)
    await _probe_table(ctx)
    async with hot.connect(ctx.uow) as connection:
        touched = await connection.first(TOUCHED, {"b_flush_behind": flush_behind})
        after = await connection.first(SETTING, {})
    assert touched is not None
    assert touched["committing"] == committing
    assert after is not None
    assert after["now"] == "on"


async def test_the_barrier_puts_a_commit_that_did_not_wait_on_disk(ctx: Context) -> None:
    _postgresql_only(ctx)
    await _probe_table(ctx)
    async with hot.connect(ctx.uow) as connection:
        await connection.first(TOUCHED, {"b_flush_behind": True})
        after_commit = await connection.first(LSN, {})
    assert after_commit is not None
    await wal_flush.barrier_for(ctx.uow).covering(await _server_started(ctx))
    async with hot.connect(ctx.uow) as connection:
        now = await connection.first(LSN, {})
    assert now is not None
    assert now["flushed"] >= after_commit["written"]


@pytest.mark.parametrize("rate_limited", [False, True])
async def test_a_fast_hold_and_its_settlement_are_tagged_with_their_server(
    ctx: Context, rate_limited: bool
) -> None:
    """Both of the hold's statements (with and without the minute's count), and the
    settlement's, ask for the barrier with the server they ran on; the session's setting is
    left as it was."""
    _postgresql_only(ctx)
    member = await add_member(ctx)
    if rate_limited:
        limited = update(Organization).where(Organization.id == member.org_id)
        await _change(ctx, limited.values(rate_limit_rpm=1000))
    receipt = await remembered(ctx, member.user_id)
    started = await _server_started(ctx)
    assert receipt.on_disk is not None
    await receipt.durable()
    settlement = await ledger.settle_hold(ctx, receipt, 10, 5)
    assert settlement.unflushed_on == started
    replayed = await ledger.settle_hold(ctx, receipt, 10, 5)  # a booking retried
    assert replayed == settlement
    assert replayed.unflushed_on == started  # what it found may not be on disk either
    await ledger.flushed(ctx, settlement)
    async with hot.connect(ctx.uow) as connection:
        setting = await connection.first(SETTING, {})
    assert setting is not None
    assert setting["now"] == "on"


async def test_turned_off_every_fast_commit_waits_for_the_disk_itself(ctx: Context) -> None:
    """`QM_DB_FLUSH_BEHIND=false`: no barrier is asked for, so none is needed (a server that
    refuses `pg_logical_emit_message` can still serve)."""
    _postgresql_only(ctx)
    waiting = replace(ctx, flush_behind=False)
    member = await add_member(waiting)
    receipt = await remembered(waiting, member.user_id)
    settlement = await ledger.settle_hold(waiting, receipt, 10, 5)
    replayed = await ledger.settle_hold(waiting, receipt, 10, 5)
    assert receipt.on_disk is None
    assert settlement.unflushed_on is None
    assert replayed.unflushed_on is None
