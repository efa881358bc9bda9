"""Readiness: can this process reach its database, and write to it, right now?

Each failure names the problem an operator can act on — the host that does not answer or does
not resolve, a schema to upgrade, a read-only standby where the primary should be, prepared
statements lost behind PgBouncer in transaction mode without `QM_DB_PGBOUNCER` — and never the
URL's credentials. A pooler in session mode serves correctly but pools nothing: `qm serve` names
it once at start (`pooling_problem`), as telling it apart takes a few connections of its own.
"""

from __future__ import annotations

import asyncio
import socket

from sqlalchemy import URL, text
from sqlalchemy.exc import SQLAlchemyError

from quartermaster.domain.errors import ServiceUnavailable
from quartermaster.services.context import Context
from quartermaster.store.db import (
    NO_CONNECTION_SLOT,
    causes,
    dialect_name,
    in_chain,
    lost_prepared_statement,
    no_writable_host,
    root_cause,
)
from quartermaster.store.migrate import current_revision, head_revision
from quartermaster.store.pooler import in_session_mode

READ_ONLY = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
REPLAY_LAG = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() "
    "OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)
"""Seconds between now and the last change the standby replayed, while it has received more than
it replayed; 0 when it has replayed all it has (an idle primary sends nothing to replay)."""
REPLICA_PROBE_S = 2.0
"""A replica that does not answer must not hold up the load balancer's check of the primary."""
POOLER_PROBE_S = 20.0
"""Telling a pooler's mode takes a few connections, and a few seconds when its pool is full; it
must not hold up `qm serve`'s start for long."""


async def check(ctx: Context) -> dict[str, str | float]:
    """The database's state, or ServiceUnavailable saying what is wrong."""
    try:
        async with ctx.uow.begin(write=False) as tx:
            await tx.session.execute(text("SELECT 1"))
            read_only = dialect_name(tx.session) == "postgresql" and bool(
                await tx.session.scalar(text(READ_ONLY))
            )
        revision = await current_revision(ctx.uow.engine)
    except (SQLAlchemyError, OSError) as exc:
        if lost_prepared_statement(exc):
            raise pooled_without_setting(ctx) from None
        raise unreachable(ctx, exc) from None
    if read_only:
        raise ServiceUnavailable(
            f"the database at {where(ctx)} is read-only (a standby): point QM_DATABASE_URL at "
            "the primary, or list every host with target_session_attrs=read-write",
            code="database_read_only",
        )
    if revision != head_revision():
        raise ServiceUnavailable(
            "database schema is not current; run `qm init`", code="schema_outdated"
        )
    return {"status": "ok", "database": "ok", "schema": revision, **await replica_state(ctx)}


async def replica_state(ctx: Context) -> dict[str, str | float]:
    """The metrics replica's state (`QM_DATABASE_REPLICA_URL`), when one is set: "ok" and how
    many seconds of the primary's changes it has still to replay, or what is wrong. Never a
    failure of the check: a replica down or behind stops or ages the metrics pages only, while
    the process meters calls as before, so a load balancer must keep sending it traffic."""
    if ctx.reports is None:
        return {}
    try:
        async with asyncio.timeout(REPLICA_PROBE_S), ctx.reports.engine.connect() as connection:
            lag = await connection.scalar(text(REPLAY_LAG))
    except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
        place = where_url(ctx.reports.engine.url)
        return {"replica": f"unreachable at {place}: {_why(exc, several=',' in place)}"}
    return {"replica": "ok", "replica_lag_s": round(float(lag or 0), 1)}


def where(ctx: Context) -> str:
    """host:port of the database, or its file (never the user or password)."""
    return where_url(ctx.uow.engine.url)


def where_url(url: URL) -> str:
    """host:port (or each listed host) of the database at `url`, or its file."""
    if url.get_backend_name() == "sqlite":
        return url.database or "(memory)"
    listed = url.query.get("host")  # several hosts: SQLAlchemy's ?host=a:5432&host=b:5432
    if isinstance(listed, tuple):
        return ",".join(listed)
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def pooled_without_setting(ctx: Context) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"prepared statements vanish at {where(ctx)}: PgBouncer in transaction mode needs "
        "QM_DB_PGBOUNCER=1 (or max_prepared_statements in PgBouncer 1.21 and newer)",
        code="database_pooler",
    )


async def pooling_problem(url: URL) -> str | None:
    """What a pooler in session mode in front of the database at `url` costs, when one is
    there. A probe that fails or stalls says nothing: the database answered the check just
    before, and /healthz names whatever stopped it since."""
    if url.get_backend_name() != "postgresql":
        return None
    try:
        async with asyncio.timeout(POOLER_PROBE_S):
            pinned = await in_session_mode(url)
    except (SQLAlchemyError, OSError):  # TimeoutError is an OSError
        return None
    if not pinned:
        return None
    return (
        f"the database at {where_url(url)} is reached through a pooler in session mode "
        "(PgBouncer's pool_mode = session): each client connection keeps a server connection, "
        "so it pools nothing, and once the pooler's pool is full calls wait for its "
        "query_wait_timeout; use pool_mode = transaction, with QM_DB_PGBOUNCER=1 before "
        "PgBouncer 1.21"
    )


def unreachable(ctx: Context, exc: BaseException) -> ServiceUnavailable:
    """The cause at the bottom of the error chain, in words: the name does not resolve, the
    port refuses, every host reached is a standby, or the driver's own error class."""
    if no_writable_host(exc):
        return ServiceUnavailable(
            f"no database at {where(ctx)} takes writes (each is a standby or read-only): "
            "promote one, or list the primary",
            code="database_unavailable",
        )
    return ServiceUnavailable(
        f"database unreachable at {where(ctx)}: {_why(exc, several=',' in where(ctx))}",
        code="database_unavailable",
    )


def _why(exc: BaseException, *, several: bool) -> str:
    if in_chain(exc, lambda seen: getattr(seen, "sqlstate", None) == NO_CONNECTION_SLOT):
        return (
            "it refuses new connections (max_connections, or a connection limit on the role or "
            "the database, is reached): each process opens up to twice QM_DB_POOL_SIZE"
        )
    cause = next((seen for seen in causes(exc) if isinstance(seen, OSError)), None)
    if isinstance(cause, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(cause, ConnectionRefusedError) and several:
        # The driver reports the last refusal even when another host was a standby.
        return "no host there both accepts connections and takes writes"
    if isinstance(cause, ConnectionRefusedError):
        return "nothing accepts connections there"
    if isinstance(cause, TimeoutError):
        return "it does not answer"
    driver = root_cause(exc)
    if "query_wait_timeout" in str(driver):
        return (
            "the pooler there gave no server connection within its query_wait_timeout (its "
            "pool is full; in session mode each client connection keeps one)"
        )
    return type(cause or exc).__name__  # not its words: they may name the database's user
