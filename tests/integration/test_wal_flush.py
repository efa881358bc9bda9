"""On PostgreSQL: a hold's statement commits without waiting for the disk, for its own
transaction only, and the barrier puts it on disk."""

from __future__ import annotations

from sqlalchemy import Integer, column, table, text, update

from quartermaster.services.context import Context
from quartermaster.store import hot, wal_flush
from tests.integration.test_hot import _postgresql_only

PROBE = table("flush_probe", column("id", Integer), column("n", Integer))
TOUCH = update(PROBE).where(PROBE.c.id == 1, wal_flush.ASYNC_COMMIT).values(n=PROBE.c.n + 1)
LSN = text("SELECT pg_current_wal_insert_lsn() AS written, pg_current_wal_flush_lsn() AS flushed")


async def _probe_table(ctx: Context) -> None:
    async with ctx.uow.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE flush_probe (id int PRIMARY KEY, n int)"))
        await connection.execute(text("INSERT INTO flush_probe VALUES (1, 0)"))


async def test_the_barrier_puts_a_commit_that_did_not_wait_on_disk(ctx: Context) -> None:
    _postgresql_only(ctx)
    await _probe_table(ctx)
    async with hot.connect(ctx.uow) as connection:
        assert await connection.execute(TOUCH, {}) == 1
        after_commit = await connection.first(LSN, {})
    assert after_commit is not None
    await wal_flush.barrier_for(ctx.uow).covering()
    async with hot.connect(ctx.uow) as connection:
        now = await connection.first(LSN, {})
    assert now is not None
    assert now["flushed"] >= after_commit["written"]


async def test_only_the_statements_own_transaction_skips_the_wait(ctx: Context) -> None:
    """Settlements and every other write on the same pooled connection still wait for the
    disk: the setting is the transaction's, not the session's."""
    _postgresql_only(ctx)
    await _probe_table(ctx)
    async with hot.connect(ctx.uow) as connection:
        await connection.execute(TOUCH, {})
        setting = await connection.first(text("SELECT current_setting('synchronous_commit')"), {})
    assert setting is not None
    assert setting[0] == "on"
