"""Engines for both backends, set up so that the ledger's guarantees hold on each.

SQLite: WAL for readers beside one writer, foreign keys on, a busy timeout, and write
transactions that start with BEGIN IMMEDIATE so two writers queue instead of failing halfway.
PostgreSQL: a bounded pool without pre-ping (a round trip per checkout is a third of a metered
call's database time). A restarted server is still reconnected to by itself: the first statement
on a dead connection fails (that request answers 503, failing closed), SQLAlchemy invalidates the
pool, and the next checkouts open fresh connections; the errors of a server shutting down or
starting up are made OperationalErrors and disconnects too (`_server_unavailable`). Behind
PgBouncer in transaction mode (`QM_DB_PGBOUNCER`), prepared statements are neither cached nor
reused across transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

WRITE_OPTION = "qm_write"
PREPARED_STATEMENT_STATES = ("26000", "42P05")
"""SQLSTATEs of a prepared statement unknown or already defined on the server connection: what a
pooler in transaction mode causes when statements are cached (`QM_DB_PGBOUNCER` off)."""
UNAVAILABLE_STATES = ("08", "57P", "53")
"""SQLSTATE classes of a server that cannot serve: connection exceptions, operator intervention,
insufficient resources (no connection slot left — `max_connections` or a role's or database's
connection limit —, out of memory, disk full): nothing the request did, so 503, never 500."""
NO_CONNECTION_SLOT = "53300"
SQLITE_BUSY_TIMEOUT_S = 30


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def dialect_name(session: AsyncSession) -> str:
    """The dialect of the engine `session` is bound to, "postgresql" or "sqlite". Every session
    comes from `UnitOfWork`'s sessionmakers, which bind one."""
    assert session.bind is not None, "the session is bound to no engine"
    return session.bind.dialect.name


def create_engine(
    url: str, *, pool_size: int = 10, pgbouncer: bool = False, **kwargs: Any
) -> AsyncEngine:
    """An async engine for `url` with the settings described in this module's docstring."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)
        _install_sqlite_hooks(engine)
        return engine
    if pgbouncer:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), **pgbouncer_connect_args()}
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600, **kwargs
    )
    event.listen(engine.sync_engine, "handle_error", _server_unavailable)
    return engine


def _server_unavailable(context: ExceptionContext) -> OperationalError | None:
    """A server shutting down, starting up, cut off or out of resources is an OperationalError
    (so callers fail closed with 503) and a disconnect (so the pool drops its connections),
    whatever class the driver gave it: asyncpg raises `CannotConnectNowError` (57P03) while
    PostgreSQL starts or stops, `AdminShutdownError` (57P01) on a fast shutdown,
    `TooManyConnectionsError` (53300) when every connection slot is taken (a bare `Error`
    to SQLAlchemy), and `InternalClientError` when a statement meets a connection whose server
    just sent its last error."""
    import asyncpg

    error: BaseException | None = context.original_exception
    for _ in range(4):  # the driver's adapted error, then what it wraps
        if error is None:
            return None
        state = str(getattr(error, "sqlstate", "") or "")
        if state.startswith(UNAVAILABLE_STATES) or isinstance(
            error, asyncpg.exceptions.InternalClientError
        ):
            break
        error = error.__cause__
    else:
        return None
    context.is_disconnect = True
    return OperationalError(
        context.statement,
        context.parameters,
        context.original_exception,
        connection_invalidated=True,
    )


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it wraps, down its chain of causes (at most 16): a driver's error sits
    at the bottom of SQLAlchemy's."""
    seen: BaseException | None = error
    for _ in range(16):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def in_chain(error: BaseException, found: Callable[[BaseException], bool]) -> bool:
    """Whether `found` holds for `error` or anything in its chain of causes."""
    return any(found(seen) for seen in causes(error))


def root_cause(error: BaseException) -> BaseException:
    """The bottom of `error`'s chain of causes: the driver's own error, whose words say what the
    server or the network refused, where SQLAlchemy's only wrap them."""
    *_, bottom = causes(error)
    return bottom


def no_writable_host(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) says that every host reached is a standby or read-only,
    which a URL with `target_session_attrs=read-write` refuses."""
    import asyncpg

    mismatch = asyncpg.exceptions.TargetServerAttributeNotMatched
    return in_chain(error, lambda seen: isinstance(seen, mismatch))


def lost_prepared_statement(error: BaseException) -> bool:
    """Whether `error` (or its cause) says a prepared statement vanished or was defined twice:
    a pooler in transaction mode while `QM_DB_PGBOUNCER` is off."""
    return in_chain(
        error,
        lambda seen: (
            getattr(getattr(seen, "orig", seen), "sqlstate", None) in PREPARED_STATEMENT_STATES
        ),
    )


def pgbouncer_connect_args() -> dict[str, Any]:
    """asyncpg behind PgBouncer in transaction mode: consecutive transactions may run on
    different server connections, so a statement prepared and cached on one is unknown on the
    next, and asyncpg's numbered names collide. No cache (asyncpg's nor SQLAlchemy's), and a
    unique name per statement; PgBouncer's `DISCARD ALL` frees them (docs/deploy.md)."""
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__qm_{uuid.uuid4().hex}__",
    }


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool), marked so SQLite starts its transactions as writers."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
