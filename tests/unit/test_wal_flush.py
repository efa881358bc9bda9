"""The write-ahead-log barrier's grouping: a commit is covered only by a barrier started after
it on the same server, and one barrier covers every commit that waited for it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from quartermaster.store.wal_flush import FlushBarrier

SERVER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
"""The start time of the server every flush here runs on, unless a test restarts it."""


class GatedFlushes:
    """Flushes that each wait to be let through, in the order they started."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.errors: list[Exception | None] = []
        self.server = SERVER

    async def __call__(self) -> datetime:
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        return self.server


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_commit_made_while_a_barrier_runs_waits_for_the_next_one() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes)
    first = barrier.covering(SERVER)
    await _settle()
    later = [barrier.covering(SERVER), barrier.covering(SERVER), barrier.covering(SERVER)]
    flushes.gates[0].set()
    await first
    await _settle()
    assert not any(waiter.done() for waiter in later)  # the first barrier may predate them
    assert len(flushes.gates) == 2  # and one more covers all three
    flushes.gates[1].set()
    await asyncio.gather(*later)
    await _settle()
    assert len(flushes.gates) == 2  # nothing left waiting: no barrier runs for nobody


async def test_a_failed_barrier_fails_only_its_own_commits() -> None:
    flushes = GatedFlushes()
    flushes.errors = [ConnectionError("the database went away"), None]
    barrier = FlushBarrier(flushes)
    failing = barrier.covering(SERVER)
    await _settle()
    following = barrier.covering(SERVER)
    flushes.gates[0].set()
    with pytest.raises(ConnectionError, match="went away"):
        await failing
    await _settle()
    flushes.gates[1].set()
    await following  # its own barrier, which succeeded


async def test_a_caller_that_stops_waiting_does_not_stop_the_barrier_for_the_others() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes)
    leaving, staying = barrier.covering(SERVER), barrier.covering(SERVER)
    await _settle()
    leaving.cancel()
    flushes.gates[0].set()
    await staying
    assert len(flushes.gates) == 1


async def test_a_barrier_on_a_restarted_server_vouches_for_nothing_before_it() -> None:
    """A commit that did not wait for the disk may have died with the server it was made on;
    a barrier on the server that replaced it cannot say it is on disk."""
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes)
    before_restart = barrier.covering(SERVER)
    flushes.server = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    after_restart = barrier.covering(flushes.server)
    await _settle()
    flushes.gates[0].set()
    await after_restart
    with pytest.raises(OperationalError, match="restarted or changed"):
        await before_restart


async def test_a_commit_nobody_waits_on_shares_the_next_calls_barrier() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes, unhurried_s=60)
    booking = barrier.covering(SERVER, hurried=False)
    await _settle()
    assert flushes.gates == []  # no barrier for it alone yet
    hold = barrier.covering(SERVER)
    await _settle()
    flushes.gates[0].set()
    await asyncio.gather(booking, hold)
    assert len(flushes.gates) == 1


async def test_a_commit_nobody_waits_on_gets_a_barrier_of_its_own_in_the_end() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes, unhurried_s=0.01)
    booking = barrier.covering(SERVER, hurried=False)
    await asyncio.sleep(0.05)
    assert len(flushes.gates) == 1
    flushes.gates[0].set()
    await booking


async def test_draining_runs_what_waits_and_returns_once_it_is_done() -> None:
    """Shutdown: a barrier still to come runs now, and the engine is closed only after it."""
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes, unhurried_s=60)
    booking = barrier.covering(SERVER, hurried=False)
    draining = asyncio.create_task(barrier.drain())
    await _settle()
    assert len(flushes.gates) == 1
    assert not draining.done()
    flushes.gates[0].set()
    await draining
    assert booking.done()
