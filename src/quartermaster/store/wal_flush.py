"""Waiting for PostgreSQL's disk once, for many commits: the barrier behind the holds.

The fast path's hold commits with `synchronous_commit` off, for its own transaction only
(`ASYNC_COMMIT`), so its statement returns as soon as PostgreSQL has applied it, without
waiting for the write-ahead log to reach the disk: about 0.4 ms of a paced call here. The
decision is already made and final for every other transaction (the counter's row lock orders
them), so the upstream call starts at once; what waits for the disk is the answer. A metered
call delivers nothing until a barrier has flushed the log past its hold: a transaction that
writes one record to the log (a transactional logical-decoding message, which touches no table
and which PostgreSQL lets every role emit) and commits synchronously. The log is flushed in
order, so that commit is on disk only once every commit before it is, the hold's included.

One barrier runs at a time per process. Commits that arrive while it runs may have been written
after its record, so they wait for the next one, which starts when it ends and covers them all
(group commit): under load that is one barrier per flush, not one per call. A commit nobody is
waiting on (a booking, after its answer went out) does not start a barrier of its own at once:
it waits up to `UNHURRIED_S` for the next call's hold to start one, which then covers both.

A barrier only vouches for commits made on the server it ran on: each commit is tagged with
its server's start time (`SERVER_STARTED`, which a restart or a failover to a standby changes),
and a barrier that ran on another server fails the commits it cannot vouch for, since a crash
there may have lost them.

If the barrier fails, its calls fail closed (503) with nothing delivered. A hold the server did
keep is then released or swept like any other; one it lost in a crash was never charged.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy import Boolean, bindparam, case, func, literal, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from quartermaster.store import hot
from quartermaster.store.uow import UnitOfWork

log = logging.getLogger(__name__)

FLUSH_BEHIND = bindparam("b_flush_behind", type_=Boolean)
"""The statement's parameter: whether its commit skips the wait (`Context.flush_behind`)."""
ASYNC_COMMIT = func.set_config(
    "synchronous_commit",
    case((FLUSH_BEHIND, literal("off")), else_=func.current_setting("synchronous_commit")),
    True,
).isnot(None)
"""A condition that is always true and, once evaluated, makes the statement's own transaction
commit without waiting for the disk when `FLUSH_BEHIND` (`true`: local to that transaction,
never the session's); otherwise it keeps the setting the session has."""
SERVER_STARTED = case((FLUSH_BEHIND, func.pg_postmaster_start_time()), else_=None).label(
    "server_started"
)
"""Which server a statement ran on, for the barrier to check, when its commit did not wait for
the disk; NULL when it did. Return it with the statement's row (`committed`)."""
BARRIER = select(
    func.pg_logical_emit_message(True, literal("quartermaster"), literal("flush")),
    func.pg_postmaster_start_time().label("server_started"),
)


class Commit(NamedTuple):
    """A fast-path statement's commit."""

    unflushed_on: datetime | None
    """The start time of the server that has it, perhaps not yet on disk; None: on disk."""


ON_DISK = Commit(None)


def committed(row: Mapping[str, Any]) -> Commit:
    """The commit of a statement that returned `SERVER_STARTED`."""
    return Commit(row["server_started"])


Flush = Callable[[], Awaitable[datetime]]
"""One barrier; returns the start time of the server it ran on."""
Waiter = tuple[asyncio.Future[None], datetime]
UNHURRIED_S = 0.1
"""How long a commit nobody waits on may wait for another's barrier before it starts one."""


class FlushBarrier:
    """Hands out futures that are done once every commit made before the request is on disk."""

    def __init__(self, flush: Flush, unhurried_s: float = UNHURRIED_S) -> None:
        self._flush = flush
        self._unhurried_s = unhurried_s
        self._waiting: list[Waiter] = []
        self._runner: asyncio.Task[None] | None = None
        self._later: asyncio.TimerHandle | None = None

    def covering(self, server_started: datetime, *, hurried: bool = True) -> asyncio.Future[None]:
        """Done when the next barrier to start has committed on the server that started at
        `server_started`; failed with its error (or a server's change) if not. Not `hurried`:
        that barrier may start up to `unhurried_s` later, unless another commit needs it."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        waiter.add_done_callback(_retrieved)
        self._waiting.append((waiter, server_started))
        if hurried:
            self._start()
        elif self._runner is None and self._later is None:
            self._later = loop.call_later(self._unhurried_s, self._start)
        return waiter

    async def drain(self) -> None:
        """Run what is waiting now and wait for it (shutdown: before the engine is closed)."""
        if self._waiting:
            self._start()
        if self._runner is not None:
            await asyncio.wait({self._runner})

    def _start(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await _flushed_for(batch, self._flush)
        finally:
            self._runner = None
            for waiter, _ in self._waiting:  # only when the runner itself was cancelled
                waiter.cancel()
            self._waiting = []


async def _flushed_for(batch: list[Waiter], flush: Flush) -> None:
    try:
        flushed_on = await flush()
    except asyncio.CancelledError:
        for waiter, _ in batch:
            waiter.cancel()
        raise
    except Exception as error:
        for waiter, _ in batch:
            _fail(waiter, error)
        return
    for waiter, server_started in batch:
        if server_started != flushed_on:
            _fail(waiter, OperationalError("barrier", None, ConnectionError(SERVER_CHANGED)))
        elif not waiter.done():
            waiter.set_result(None)


SERVER_CHANGED = "the database server restarted or changed before it was flushed"


def _fail(waiter: asyncio.Future[None], error: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(error)


def _retrieved(waiter: asyncio.Future[None]) -> None:
    """A caller that stopped waiting (a disconnect) must not leave an error unread in the log."""
    if not waiter.cancelled():
        waiter.exception()


_barriers: WeakKeyDictionary[UnitOfWork, FlushBarrier] = WeakKeyDictionary()


async def drain(uow: UnitOfWork) -> None:
    """Finish this process's barriers for the database, if it has any (shutdown)."""
    barrier = _barriers.get(uow)
    if barrier is not None:
        await barrier.drain()


def barrier_for(uow: UnitOfWork) -> FlushBarrier:
    """The process's barrier for this database (kept no longer than the unit of work)."""
    barrier = _barriers.get(uow)
    if barrier is None:
        barrier = _barriers[uow] = FlushBarrier(partial(_flush_weakly, weakref.ref(uow)))
    return barrier


async def _flush_weakly(uow: weakref.ref[UnitOfWork]) -> datetime:
    alive = uow()
    if alive is None:
        raise OperationalError("barrier", None, ConnectionError("the database was closed"))
    return await _flush(alive)


async def _flush(uow: UnitOfWork) -> datetime:
    """One barrier; any failure is the ledger being unavailable, so the calls fail closed."""
    try:
        async with hot.connect(uow) as connection:
            row = await connection.first(BARRIER, {})
    except OperationalError:
        raise
    except SQLAlchemyError as error:  # refused, or no connection free in time: say why
        log.error("the write-ahead-log barrier failed: %s", getattr(error, "orig", error))
        raise OperationalError("barrier", None, error, connection_invalidated=False) from error
    assert row is not None, "a SELECT without FROM returns one row"
    return row["server_started"]
