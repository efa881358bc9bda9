"""The gateway's per-call statements, run on the driver itself on PostgreSQL.

SQLAlchemy's execution layer costs about 150 µs of CPU per statement here: several times what
the statement costs PostgreSQL, and the largest share of a metered call's overhead. The few
statements every call makes (the API key, the reserve, the settlement) are still written once with
SQLAlchemy Core; on PostgreSQL they are compiled once to SQL and run on the pooled asyncpg
connection directly, each in autocommit (or a few together in `HotConnection.atomic()`), with
asyncpg's prepared-statement cache. Only the checkout and the return go through SQLAlchemy's
public `AsyncConnection` (some tens of µs per call), so that its pool closes, drops and renews
these connections as it does every other. On SQLite the statements run through SQLAlchemy as
usual, in one BEGIN IMMEDIATE transaction per `connect()`.

Errors keep the meaning they have everywhere else: a server that cannot be reached is an
`OperationalError` (the API answers 503, failing closed) and its connection leaves the pool; a
constraint violation is an `IntegrityError`; any other database error a `DBAPIError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import asyncpg
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from quartermaster.store.db import UNAVAILABLE_STATES
from quartermaster.store.uow import UnitOfWork

UNREACHABLE = (
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a statement on a connection the server just left
    OSError,
    TimeoutError,
)
"""Beside the PostgreSQL errors of the SQLSTATE classes in `UNAVAILABLE_STATES`."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]
    """Values the statement carries itself (literals SQLAlchemy bound); every other name must
    be given, so a forgotten parameter is an error, never a silent NULL."""

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [self.fixed[name] if name in self.fixed else params[name] for name in self.names]


@cache
def _compiled(statement: Executable) -> _Compiled:
    """PostgreSQL's SQL for `statement`, in $n order. Cached by the statement object: only for
    statements built once (module constants, `functools.cache`d builders)."""
    assert isinstance(statement, ClauseElement), "a Core statement"
    compiled = statement.compile(dialect=pg_asyncpg.dialect())
    assert isinstance(compiled, SQLCompiler), "a statement compiles to SQL"
    names = tuple(compiled.positiontup or ())
    fixed = {name: compiled.params[name] for name in names if not compiled.binds[name].required}
    return _Compiled(str(compiled), names, fixed)


class HotConnection:
    """One connection for a few statements of one metered call."""

    def __init__(self, driver: asyncpg.Connection | None, fallback: AsyncConnection | None):
        self._driver, self._fallback = driver, fallback
        self.mid_transaction = False
        """True from a transaction's BEGIN until it has ended: `connect` discards a connection
        returned in between (SQLAlchemy's reset on return knows nothing of this transaction)."""

    @property
    def is_postgresql(self) -> bool:
        return self._driver is not None

    async def first(
        self, statement: Executable, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """The statement's first row (by column name), or None."""
        if self._driver is None:
            assert self._fallback is not None
            row = (await self._fallback.execute(statement, dict(params))).first()
            return None if row is None else dict(row._mapping)
        compiled = _compiled(statement)
        with _translated(compiled.sql):
            return await self._driver.fetchrow(compiled.sql, *compiled.arguments(params))

    async def execute(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it matched."""
        if self._driver is None:
            assert self._fallback is not None
            result = await self._fallback.execute(statement, dict(params))
            return int(getattr(result, "rowcount", 0))
        compiled = _compiled(statement)
        with _translated(compiled.sql):
            status = await self._driver.execute(compiled.sql, *compiled.arguments(params))
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[Undo]:
        """The statements inside take effect together or not at all: a transaction on
        PostgreSQL (where each statement otherwise commits alone), a savepoint inside the
        connection's transaction on SQLite. They are rolled back when the block raises or asks
        for it (`Undo.request`), and committed otherwise."""
        ending: _Ending
        if self._driver is None:
            assert self._fallback is not None
            ending = await self._fallback.begin_nested()
        else:
            self.mid_transaction = True
            transaction = self._driver.transaction()
            with _translated("BEGIN"):
                await transaction.start()
            ending = transaction
        undo = Undo()
        try:
            yield undo
        except Exception:
            await _end(ending, commit=False)
            self.mid_transaction = False
            raise
        await _end(ending, commit=not undo.requested)
        self.mid_transaction = False


class Undo:
    """Asks `HotConnection.atomic` to roll its statements back instead of committing them."""

    requested = False

    def request(self) -> None:
        self.requested = True


class _Ending(Protocol):
    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


async def _end(ending: _Ending, *, commit: bool) -> None:
    """Commit or roll back; a connection that cannot even do that is discarded (`connect`)."""
    with _translated("COMMIT" if commit else "ROLLBACK"):
        await (ending.commit() if commit else ending.rollback())


@contextmanager
def _translated(sql: str) -> Iterator[None]:
    """The driver's errors as the SQLAlchemy errors the rest of the app handles."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(sql, None, error) from error
    except asyncpg.PostgresError as error:
        if str(error.sqlstate or "").startswith(UNAVAILABLE_STATES):
            raise _unreachable(sql, error) from error
        raise DBAPIError(sql, None, error) from error
    except UNREACHABLE as error:
        raise _unreachable(sql, error) from error


def _unreachable(sql: str, error: BaseException) -> OperationalError:
    return OperationalError(sql, None, error, connection_invalidated=True)


@asynccontextmanager
async def connect(uow: UnitOfWork) -> AsyncIterator[HotConnection]:
    """A connection from the app's pool for the statements of one call."""
    if uow.engine.dialect.name != "postgresql":
        async with uow.statement() as fallback:
            yield HotConnection(None, fallback)
        return
    checked_out = await _check_out(uow.engine)
    pooled = await checked_out.get_raw_connection()
    driver = pooled.driver_connection
    connection = HotConnection(driver, None)
    discarded: BaseException | None = None
    try:
        yield connection
    except asyncio.CancelledError as error:
        discarded = error  # perhaps mid-statement: never hand it to the next call
        raise
    except OperationalError as error:
        if error.connection_invalidated:
            discarded = error
            _generation(uow.engine.sync_engine).end(pooled)
        raise
    finally:
        if discarded is None and connection.mid_transaction:
            discarded = RuntimeError("returned in the middle of a transaction")
        await _give_back(checked_out, driver, discarded)


async def _check_out(engine: AsyncEngine) -> AsyncConnection:
    """A pooled connection through `AsyncConnection`, whose return (`_give_back`) runs inside
    SQLAlchemy's own greenlet: a pool that closes the connection then awaits the driver's close
    instead of leaking it."""
    try:
        return await engine.connect()
    except SQLAlchemyError:
        raise
    except Exception as error:  # the driver's own refusal to connect
        raise _unreachable("connect", error) from error


async def _give_back(
    checked_out: AsyncConnection, driver: asyncpg.Connection, discarded: BaseException | None
) -> None:
    """Return the connection to the pool, or, when `discarded` says why, drop it: its socket at
    once (SQLAlchemy's own invalidation first tries a polite close, which can wait seconds on a
    server that does not answer), then its place in the pool."""
    try:
        if discarded is not None:
            driver.terminate()
            await checked_out.invalidate(discarded)
    finally:
        await checked_out.close()


_GENERATION = "quartermaster.hot.generation"
"""Key of a pooled connection's generation in its `info`; absent on those opened before the
first disconnect, which are of generation 0."""


class _Generation:
    """What SQLAlchemy does on a disconnect it sees itself, for those the driver meets here:
    every connection of the failed one's generation is replaced at its next checkout, so a
    restarted server costs one failed call, not one per pooled connection."""

    def __init__(self) -> None:
        self.current = 0

    def end(self, failed: PoolProxiedConnection) -> None:
        """Start a new generation, unless `failed` was already of an ended one (the pool was
        renewed since it was checked out)."""
        if failed.info.get(_GENERATION, 0) == self.current:
            self.current += 1

    def stamp(self, _dbapi_connection: object, entry: ConnectionPoolEntry) -> None:
        """`PoolEvents.connect`: a new connection is of the current generation."""
        entry.info[_GENERATION] = self.current

    def renew_if_ended(
        self, _dbapi_connection: object, entry: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        """`PoolEvents.checkout`: the pool replaces a connection of an ended generation by a
        new one when its listener raises `DisconnectionError`."""
        if entry.info.get(_GENERATION, 0) != self.current:
            raise DisconnectionError("opened before the database was last found unreachable")


_generations: WeakKeyDictionary[Engine, _Generation] = WeakKeyDictionary()


def _generation(engine: Engine) -> _Generation:
    """The engine's generations, followed from its first disconnect on: until then the pool's
    checkouts carry no listener of ours."""
    if engine not in _generations:
        generation = _generations[engine] = _Generation()
        event.listen(engine, "connect", generation.stamp)
        event.listen(engine, "checkout", generation.renew_if_ended)
    return _generations[engine]
