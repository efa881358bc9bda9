"""The gateway's per-call statements, run on the driver itself on PostgreSQL.

SQLAlchemy's execution layer costs about 150 µs of CPU per statement here and a pool checkout
through `Connection` about 250 µs more: several times what the statement costs PostgreSQL, and
the largest share of a metered call's overhead. The few statements every call makes (the API key,
the reserve, the settlement) are still written once with SQLAlchemy Core; on PostgreSQL they are
compiled once to SQL and run on the pooled asyncpg connection directly, each in autocommit (or a
few together in `HotConnection.atomic()`), with asyncpg's prepared-statement cache. On SQLite
they run through SQLAlchemy as usual, in one BEGIN IMMEDIATE transaction per `connect()`.

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

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

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
    compiled = statement.compile(dialect=pg_asyncpg.dialect())
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
            return None if row is None else row._mapping
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
            ending = self._driver.transaction()
            with _translated("BEGIN"):
                await ending.start()
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
        async with uow.statement() as connection:
            yield HotConnection(None, connection)
        return
    try:
        pooled = await uow.engine.raw_connection()
    except SQLAlchemyError:
        raise
    except Exception as error:  # the driver's own refusal to connect
        raise _unreachable("connect", error) from error
    driver = pooled.driver_connection
    connection = HotConnection(driver, None)
    try:
        yield connection
    except asyncio.CancelledError as error:
        _discard(pooled, driver, error)  # perhaps mid-statement: never hand it to the next call
        raise
    except OperationalError as error:
        if error.connection_invalidated:
            _discard(pooled, driver, error)
            # As SQLAlchemy does on a disconnect: every connection of this one's generation is
            # replaced at its next checkout, so a restarted server costs one failed call, not
            # one per pooled connection.
            uow.engine.sync_engine.pool._invalidate(pooled, error, _checkin=False)
        raise
    finally:
        if connection.mid_transaction and not driver.is_closed():
            _discard(pooled, driver, RuntimeError("returned in the middle of a transaction"))
        # The pool may close the connection on its return (overflow, invalidation), which awaits
        # the driver: only inside SQLAlchemy's greenlet does that happen instead of leaking it.
        await greenlet_spawn(pooled.close)


def _discard(pooled: Any, driver: asyncpg.Connection, error: BaseException) -> None:
    """Drop the driver's connection at once and take it out of the pool."""
    driver.terminate()
    pooled.invalidate(error)
