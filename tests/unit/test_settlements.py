"""Bookings that run after the answer: retried while the database is away, never retried for a
real refusal, and waited for at shutdown."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from quartermaster.domain.errors import Conflict
from quartermaster.services import settlements
from quartermaster.services.settlements import Settlements


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settlements, "FIRST_BACKOFF_S", 0.001)


def _down() -> OperationalError:
    return OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))


async def test_a_booking_is_retried_until_the_database_is_back() -> None:
    attempts: list[int] = []

    async def book() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise _down()
        return "booked"

    task = Settlements().start(book, "chatcmpl-1")
    assert await task == "booked"
    assert len(attempts) == 4


async def test_a_deadlock_is_retried() -> None:
    attempts: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    async def book() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise DBAPIError("UPDATE …", {}, Deadlock("deadlock detected"))
        return "booked"

    assert await Settlements().start(book, "chatcmpl-5") == "booked"
    assert len(attempts) == 2


async def test_a_refusal_is_not_retried_and_waiting_for_it_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    async def book() -> str:
        attempts.append(1)
        raise Conflict("settled with other numbers", code="settled_with_different_usage")

    assert await Settlements().start(book, "chatcmpl-2") is None
    assert len(attempts) == 1
    assert "could not settle request chatcmpl-2" in caplog.text


async def test_a_process_gives_up_on_a_booking_after_its_retry_window() -> None:
    async def book() -> str:
        raise _down()

    assert await Settlements(retry_for_s=0.05).start(book, "chatcmpl-3") is None


async def test_drain_waits_for_bookings_nobody_else_waits_for() -> None:
    booked: list[str] = []

    async def book() -> None:
        await asyncio.sleep(0.05)
        booked.append("chatcmpl-4")

    running = Settlements()
    running.start(book, "chatcmpl-4")
    assert running.pending == 1
    await running.drain()
    assert booked == ["chatcmpl-4"]
    assert running.pending == 0
