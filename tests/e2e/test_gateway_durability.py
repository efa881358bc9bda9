"""On PostgreSQL a hold commits without waiting for the disk, so the upstream call starts at
once; nothing is delivered until the barrier behind it has put it on disk, and a hold that
cannot be confirmed fails the call closed, with nothing delivered or charged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import openai
import pytest
from fastapi import FastAPI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store import wal_flush
from quartermaster.store.uow import UnitOfWork
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.fakes.barrier import unconfirmed
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_hot import _postgresql_only
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "Say hello"}]
KINDS = ("inference", "training")


@dataclass(frozen=True)
class Caller:
    ctx: Context
    client: openai.AsyncOpenAI
    user_id: int
    period: str

    async def chat(self) -> ChatCompletion:
        return await self.client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)

    async def counters(self) -> list[tuple[int, int]]:
        """(used, reserved) for the month, inference then training."""
        return [await counter(self.ctx, self.user_id, self.period, kind) for kind in KINDS]


@asynccontextmanager
async def _warmed_up(gateway: FastAPI, ctx: Context) -> AsyncIterator[Caller]:
    """A member whose month's first calls (which take the full path, waiting for the disk
    themselves) are behind them, booked and flushed: their next ones take the fast path, and
    the next barrier to run is the next call's."""
    _postgresql_only(ctx)
    member = await add_member(ctx, inference_cap=100_000, training_cap=100_000)
    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        caller = Caller(ctx, client, member.user_id, ctx.clock.now().strftime("%Y-%m"))
        await caller.chat()
        await client.embeddings.create(model=EMBEDDING, input="hello")
        await gateway.state.ctx.settlements.drain()  # their bookings' barriers included
        yield caller


async def _read(stream: openai.AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


HELD_AT_MOST_S = 10.0


class Flushes:
    """The barrier's flushes as they come: the `failing`-th fails, the `held`-th waits."""

    def __init__(self, real: Callable[[UnitOfWork], Awaitable[datetime]]) -> None:
        self.real, self.count = real, 0
        self.failing: int | None = None
        self.held: int | None = None
        self.release = asyncio.Event()

    async def __call__(self, uow: UnitOfWork) -> datetime:
        self.count += 1
        if self.count == self.failing:
            await unconfirmed(uow)
        if self.count == self.held:  # bounded: a test failing before `release` must not hang
            await asyncio.wait_for(self.release.wait(), HELD_AT_MOST_S)
        return await self.real(uow)


async def test_the_answer_waits_for_its_hold_to_be_on_disk(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _warmed_up(gateway, ctx) as caller:
        sent_before = len(fake.requests)
        flushes = Flushes(wal_flush._flush)
        flushes.held = 1  # the hold's barrier
        monkeypatch.setattr(wal_flush, "_flush", flushes)
        call = asyncio.create_task(caller.chat())
        for _ in range(400):
            if len(fake.requests) > sent_before:
                break
            await asyncio.sleep(0.005)
        assert len(fake.requests) == sent_before + 1  # sent upstream before the hold's flush
        await asyncio.sleep(0.05)
        assert not call.done()
        flushes.release.set()
        answer = await call
    assert answer.choices[0].message.content == fake.reply


async def test_a_hold_that_cannot_be_confirmed_fails_closed(
    gateway: FastAPI, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _warmed_up(gateway, ctx) as caller:
        charged_before = await caller.counters()
        monkeypatch.setattr(wal_flush, "_flush", unconfirmed)
        with pytest.raises(openai.APIStatusError) as refused:
            await caller.chat()
        with pytest.raises(openai.APIStatusError) as refused_embedding:
            await caller.client.embeddings.create(model=EMBEDDING, input="hello")
        stream = await caller.client.chat.completions.create(
            model=CHAT, messages=HELLO, max_tokens=5, stream=True
        )
        delivered: list[str] = []
        with pytest.raises(openai.APIError, match="database is unreachable"):
            await _read(stream, delivered)
        for error in (refused.value, refused_embedding.value):
            assert (error.status_code, error.code) == (503, "database_unavailable")
        assert delivered == []
        assert await caller.counters() == charged_before  # the holds were released


async def test_the_charge_shows_before_its_settlement_is_on_disk(
    gateway: FastAPI, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's request ends once the charge is written, not flushed: a client's next
    call on the same connection does not wait for the disk."""
    settlements = gateway.state.ctx.settlements
    async with _warmed_up(gateway, ctx) as caller:
        (used_before, _), _ = await caller.counters()
        flushes = Flushes(wal_flush._flush)
        flushes.held = 2  # the hold's barrier goes through; the settlement's waits
        monkeypatch.setattr(wal_flush, "_flush", flushes)
        answer = await asyncio.wait_for(caller.chat(), 5)
        charged = answer.usage.model_extra["tokens_charged"]  # type: ignore[union-attr]
        assert (await caller.counters())[0] == (used_before + charged, 0)
        assert settlements.pending == 1  # still waiting for the disk
        flushes.release.set()
        await settlements.drain()
    assert settlements.pending == 0


async def test_a_settlement_that_cannot_be_confirmed_is_retried_and_charged_once(
    gateway: FastAPI,
    ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The retry finds the settlement the server kept, and replays it."""
    async with _warmed_up(gateway, ctx) as caller:
        (used_before, _), _ = await caller.counters()
        flushes = Flushes(wal_flush._flush)
        flushes.failing = 2  # the hold's barrier goes through; the settlement's fails once
        monkeypatch.setattr(wal_flush, "_flush", flushes)
        answer = await caller.chat()
        await gateway.state.ctx.settlements.drain()
        charged = answer.usage.model_extra["tokens_charged"]  # type: ignore[union-attr]
        assert (await caller.counters())[0] == (used_before + charged, 0)
    assert "retrying" in caplog.text
    assert flushes.count == 3  # the replay found the settlement, and saw it onto the disk
    assert await check.check(ctx) == []
