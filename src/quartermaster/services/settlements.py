"""Settling metered calls after their answers have gone out.

A caller should not wait for the ledger's bookkeeping: the charge is known the moment the usage
is (the hold carries the rates it was quoted at, `HoldReceipt.charge`), so the answer reports it
and the booking runs in a task of its own, started before the answer is sent. The task is
tracked by the process: a request cancelled or disconnected after its answer cannot stop it,
shutdown waits for it (`drain`), and a database that is briefly unreachable is retried —
settling is idempotent by request id, and a hold the sweeper expired meanwhile is still charged
(marked late). A process killed in the moment between answer and booking leaves the hold to the
sweeper, exactly as a kill during the call itself does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (OperationalError, InterfaceError, OSError, TimeoutError)
"""A database that cannot be reached; anything else is a bug or a conflict, and is not retried."""
TRANSIENT_STATES = ("40001", "40P01")
"""Serialization failure and deadlock: the transaction was rolled back whole, so try again."""
RETRY_FOR_S = 1200.0
"""How long one process keeps a booking it could not write. The hold has expired by then (the
default deadline is 600 s) and its tokens were freed; a booking written later is still charged,
marked late, but a process cannot hold on to every call of a long outage for ever."""
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 5.0
DRAIN_TIMEOUT_S = 15.0


def _retryable(error: BaseException) -> bool:
    if isinstance(error, DBAPIError):
        state = str(getattr(error.orig, "sqlstate", "") or "")
        if error.connection_invalidated or state in TRANSIENT_STATES:
            return True
    return isinstance(error, RETRYABLE)


class Settlements:
    """The process's settlements in flight."""

    def __init__(self, retry_for_s: float = RETRY_FOR_S) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retry_for_s = retry_for_s

    def start(self, book: Callable[[], Awaitable[T]], request_id: str) -> asyncio.Task[T | None]:
        """Run `book` now, in its own task, until it succeeds (its result) or fails for good
        (logged; None). Awaiting the task never raises, so a response may wait on it."""
        task = asyncio.get_running_loop().create_task(self._until_booked(book, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait for every settlement in flight (shutdown, tests); past `timeout_s` the rest are
        left to the sweeper, which frees their holds when they expire."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        if late:
            log.error(
                "%d settlements still unbooked at shutdown; the sweeper frees them", len(late)
            )

    async def _until_booked(self, book: Callable[[], Awaitable[T]], request_id: str) -> T | None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._retry_for_s
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                return await book()
            except Exception as error:
                if not _retryable(error) or loop.time() + backoff > give_up_at:
                    log.exception("could not settle request %s; its hold expires", request_id)
                    return None
                log.warning(
                    "settling %s failed (%s); retrying in %.2f s", request_id, error, backoff
                )
            # Jittered, so a recovered database is not met by every waiting booking at once.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311
            backoff = min(backoff * 2, MAX_BACKOFF_S)
