"""The hot path's statements on the driver: the same rows and errors as through SQLAlchemy, and a
connection that broke or was left mid-statement never reaches the next call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Integer, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from quartermaster.services.context import Context
from quartermaster.store import hot
from quartermaster.store.db import create_engine
from quartermaster.store.models import Hold
from quartermaster.store.uow import UnitOfWork

ONE_MORE = select((bindparam("b_n", type_=Integer) + 1).label("n"))


async def _one_more(ctx: Context, n: int) -> int:
    async with hot.connect(ctx.uow) as connection:
        row = await connection.first(ONE_MORE, {"b_n": n})
    assert row is not None
    return int(row["n"])


async def _on_the_server(ctx: Context, query: str) -> Any:
    """`query`'s value, asked of the server on a connection of its own with the test's
    database name as $1."""
    url = ctx.uow.engine.url
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database="postgres"
    )
    try:
        return await admin.fetchval(query, url.database)
    finally:
        await admin.close()


async def _nothing_leaked(ctx: Context) -> None:
    """Every connection is back, and the server holds no idle one beyond those the pool keeps:
    one the pool dropped without closing it would stay open there. (A closed one's server
    process may take a moment to leave; one whose client left mid-statement stays active until
    the statement ends.)"""
    pool = ctx.uow.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    idle = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'idle'"
    for _ in range(40):
        if await _on_the_server(ctx, idle) <= pool.checkedin():
            return
        await asyncio.sleep(0.05)
    assert await _on_the_server(ctx, idle) <= pool.checkedin()


def _postgresql_only(database: Context | str) -> None:
    """Skips on SQLite; `database` is the test's context or its database URL."""
    url = database if isinstance(database, str) else str(database.uow.engine.url)
    if not url.startswith("postgresql"):
        pytest.skip("the driver path is PostgreSQL's; SQLite runs through SQLAlchemy")


async def test_rows_come_back_by_column_name(ctx: Context) -> None:
    assert await _one_more(ctx, 41) == 42
    async with hot.connect(ctx.uow) as connection:
        counted = await connection.first(select(func.count().label("holds")).select_from(Hold), {})
    assert counted is not None
    assert counted["holds"] == 0


async def test_a_constraint_violation_is_an_integrity_error(ctx: Context) -> None:
    _postgresql_only(ctx)
    async with ctx.uow.begin() as tx:
        await tx.session.execute(text("CREATE TABLE hot_unique (k int PRIMARY KEY)"))
        await tx.commit()
    insert = text("INSERT INTO hot_unique VALUES (1)")
    async with hot.connect(ctx.uow) as connection:
        await connection.execute(insert, {})
        with pytest.raises(IntegrityError):
            await connection.execute(insert, {})
    assert await _one_more(ctx, 1) == 2


async def test_a_connection_killed_by_the_server_is_a_503_and_then_replaced(ctx: Context) -> None:
    _postgresql_only(ctx)
    with pytest.raises(OperationalError) as down:
        async with hot.connect(ctx.uow) as connection:
            await connection.first(text("SELECT pg_terminate_backend(pg_backend_pid())"), {})
    assert down.value.connection_invalidated
    assert [await _one_more(ctx, n) for n in range(3)] == [1, 2, 3]


async def test_a_statement_cancelled_midway_leaves_no_busy_connection_behind(
    ctx: Context,
) -> None:
    _postgresql_only(ctx)

    async def slow() -> None:
        async with hot.connect(ctx.uow) as connection:
            await connection.first(text("SELECT pg_sleep(5)"), {})

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every pooled connection is asked in turn; none is still busy with the cancelled sleep.
    assert await asyncio.gather(*(_one_more(ctx, n) for n in range(12))) == list(range(1, 13))
    await _nothing_leaked(ctx)


async def test_connections_beyond_the_pools_size_are_closed_when_returned(ctx: Context) -> None:
    """The pool closes its overflow connections on return; outside SQLAlchemy's greenlet that
    close would fail and leak the connection (pytest reports the unclosed socket as an error)."""
    _postgresql_only(ctx)

    async def held_a_while(n: int) -> int:
        async with hot.connect(ctx.uow) as connection:
            row = await connection.first(text("SELECT pg_sleep(0.2), 1 AS one"), {})
        assert row is not None
        return n + int(row["one"])

    assert await asyncio.gather(*(held_a_while(n) for n in range(18))) == list(range(1, 19))
    await _nothing_leaked(ctx)


async def test_after_the_server_drops_every_connection_one_call_fails_not_each(
    ctx: Context,
) -> None:
    """A restarted server leaves every pooled connection dead; the first call that meets one
    answers 503 and the rest of the pool is renewed, as SQLAlchemy does on a disconnect."""
    _postgresql_only(ctx)

    async def held_a_while() -> None:
        async with hot.connect(ctx.uow) as connection:
            await connection.first(text("SELECT pg_sleep(0.1)"), {})

    await asyncio.gather(*(held_a_while() for _ in range(5)))  # five connections in the pool
    await _on_the_server(
        ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1"
    )
    failed = 0
    for n in range(6):
        try:
            await _one_more(ctx, n)
        except OperationalError:
            failed += 1
    assert failed == 1
    await _nothing_leaked(ctx)


HOT_ATOMIC_INSERT = text("INSERT INTO hot_atomic VALUES (:k)").bindparams(
    bindparam("k", type_=Integer)
)


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[UnitOfWork]:
    """A pool of a single connection, so that every block of a test gets the same one, and an
    empty table `hot_atomic (k)`."""
    engine = create_engine(database_url, pool_size=1)
    uow = UnitOfWork(engine)
    async with uow.begin() as tx:
        await tx.session.execute(text("CREATE TABLE hot_atomic (k int PRIMARY KEY)"))
        await tx.commit()
    yield uow
    await engine.dispose()


async def _insert_atomically(uow: UnitOfWork, keys: list[int], *, undo: bool = False) -> None:
    async with hot.connect(uow) as connection, connection.atomic() as atomic:
        for k in keys:
            await connection.execute(HOT_ATOMIC_INSERT, {"k": k})
        if undo:
            atomic.request()


async def _kept(uow: UnitOfWork) -> list[int]:
    async with uow.begin(write=False) as tx:
        return list(await tx.session.scalars(text("SELECT k FROM hot_atomic ORDER BY k")))


async def test_statements_made_atomic_are_kept_together_or_not_at_all(
    one_connection: UnitOfWork,
) -> None:
    """Rolled back on request and on an error; the rolled-back connection goes back to the
    pool ready for the next call."""
    await _insert_atomically(one_connection, [1, 2], undo=True)
    with pytest.raises(IntegrityError):
        await _insert_atomically(one_connection, [3, 3])
    await _insert_atomically(one_connection, [4, 5])
    assert await _kept(one_connection) == [4, 5]


async def test_a_transaction_that_could_not_end_never_reaches_the_next_call(
    database_url: str, one_connection: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection whose ROLLBACK failed is still inside its transaction: it is dropped, not
    pooled, or the next call's statements would run in that transaction and never commit."""
    _postgresql_only(database_url)
    ending = hot._end

    async def refused_rollback(transaction: object, *, commit: bool) -> None:
        if not commit:
            raise DBAPIError("ROLLBACK", None, RuntimeError("the rollback was refused"))
        await ending(transaction, commit=commit)  # type: ignore[arg-type]

    monkeypatch.setattr(hot, "_end", refused_rollback)
    with pytest.raises(DBAPIError):
        await _insert_atomically(one_connection, [6], undo=True)
    monkeypatch.undo()
    await _insert_atomically(one_connection, [7])
    assert await _kept(one_connection) == [7]
