"""The write-ahead-log barrier's grouping: a commit is covered only by a barrier started after
it, and one barrier covers every commit that waited for it."""

from __future__ import annotations

import asyncio

import pytest

from quartermaster.store.wal_flush import FlushBarrier


class GatedFlushes:
    """Flushes that each wait to be let through, in the order they started."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.errors: list[Exception | None] = []

    async def __call__(self) -> None:
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_commit_made_while_a_barrier_runs_waits_for_the_next_one() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes)
    first = barrier.covering()
    await _settle()
    later = [barrier.covering(), barrier.covering(), barrier.covering()]
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
    failing = barrier.covering()
    await _settle()
    following = barrier.covering()
    flushes.gates[0].set()
    with pytest.raises(ConnectionError, match="went away"):
        await failing
    await _settle()
    flushes.gates[1].set()
    await following  # its own barrier, which succeeded


async def test_a_caller_that_stops_waiting_does_not_stop_the_barrier_for_the_others() -> None:
    flushes = GatedFlushes()
    barrier = FlushBarrier(flushes)
    leaving, staying = barrier.covering(), barrier.covering()
    gave_up = asyncio.create_task(asyncio.wait_for(asyncio.shield(leaving), 0.01))
    with pytest.raises(TimeoutError):
        await gave_up
    flushes.gates[0].set()
    await staying
    assert leaving.done()
    assert not leaving.cancelled()
