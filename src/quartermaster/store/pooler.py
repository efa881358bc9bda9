"""Whether a pooler in session mode sits between this process and PostgreSQL, told from the
server connections (backend process ids) a few client connections of our own are given.

PgBouncer answers `SHOW pool_mode` only on its admin console, and on the wire it is PostgreSQL
itself, so a client can tell it apart only by how it lends server connections: PostgreSQL starts a
new backend for every connection; a pooler hands a closed client's server connection to the next
client; in session mode it then keeps it pinned to that client until the client disconnects, in
transaction mode it lends it to any client between transactions (docs/deploy.md).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import URL, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from quartermaster.store.db import pgbouncer_connect_args

TRIALS = 3
"""A pooler busy with other clients may give any trial another server connection; one trial that
sees a server connection lent between clients proves transaction mode."""
WAIT_S = 3.0
"""How long a client may wait for a server connection while ours sits idle: in transaction mode
the idle one is lent at once; in session mode with its pool full, no client gets one until
another disconnects (or PgBouncer's `query_wait_timeout`, 120 s, ends the wait)."""


async def in_session_mode(url: URL) -> bool:
    """Whether the PostgreSQL at `url` is reached through a pooler that pins each client's server
    connection for the client's lifetime (PgBouncer's `pool_mode = session`)."""
    engine = create_async_engine(url, poolclass=NullPool, connect_args=pgbouncer_connect_args())
    pinned = False
    try:
        for _ in range(TRIALS):
            verdict = await _trial(engine)
            if verdict in ("transaction", "full"):
                return verdict == "full"
            pinned = pinned or verdict == "session"
    finally:
        await engine.dispose()
    return pinned


async def _trial(engine: AsyncEngine) -> str | None:
    """ "session" or "transaction" when a closed client's server connection went to the next
    client (a pooler), by whether a second client is then lent it between transactions; "full"
    when that client waits for a server while ours sits idle, which only a pooler in session
    mode with its pool full does. None when the next client got a server connection of its own
    (PostgreSQL itself, or a pooler that gave the first one to someone else)."""
    async with engine.connect() as first:
        closed = await _backend(first)
    async with engine.connect() as held:
        kept = await _backend(held)
        if kept != closed:
            return None
        try:
            async with asyncio.timeout(WAIT_S), engine.connect() as other:
                beside = await _backend(other)
        except TimeoutError:
            return "full"
        again = await _backend(held)
    return "transaction" if beside == kept or again != kept else "session"


async def _backend(connection: AsyncConnection) -> int:
    """The PostgreSQL backend serving `connection` for one transaction, which then ends: a pooler
    in transaction mode may lend that server connection to another client from here on."""
    backend = int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)
    await connection.commit()
    return backend
