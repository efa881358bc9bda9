"""On PostgreSQL a hold commits without waiting for the disk, so the upstream call starts at
once; nothing is delivered until the barrier behind it has put it on disk, and a hold that
cannot be confirmed fails the call closed, with nothing delivered or charged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import openai
import pytest
from fastapi import FastAPI
from openai.types.chat import ChatCompletionChunk
from sqlalchemy.exc import OperationalError

from quartermaster.services import ledger_check
from quartermaster.services.context import Context
from quartermaster.store import wal_flush
from quartermaster.store.uow import UnitOfWork
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_hot import _postgresql_only
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "Say hello"}]
KINDS = ("inference", "training")


async def _warmed_up(ctx: Context, client: openai.AsyncOpenAI) -> None:
    """A month's first call takes the full path, which waits for the disk itself."""
    await client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
    await client.embeddings.create(model=EMBEDDING, input="hello")


async def _read(stream: openai.AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


async def _unconfirmed(_: UnitOfWork) -> datetime:
    raise OperationalError("barrier", None, ConnectionError("the server went away"))


async def test_the_answer_waits_for_its_hold_to_be_on_disk(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgresql_only(ctx)
    member = await add_member(ctx, inference_cap=100_000)
    gate = asyncio.Event()
    real_flush = wal_flush._flush

    async def held_flush(uow: UnitOfWork) -> datetime:
        await gate.wait()
        return await real_flush(uow)

    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        await _warmed_up(ctx, client)
        sent_before = len(fake.requests)
        monkeypatch.setattr(wal_flush, "_flush", held_flush)
        call = asyncio.create_task(
            client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
        )
        for _ in range(400):
            if len(fake.requests) > sent_before:
                break
            await asyncio.sleep(0.005)
        assert len(fake.requests) == sent_before + 1  # sent upstream before the hold's flush
        await asyncio.sleep(0.05)
        assert not call.done()
        gate.set()
        answer = await call
    assert answer.choices[0].message.content == fake.reply


async def test_a_hold_that_cannot_be_confirmed_fails_closed(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgresql_only(ctx)
    member = await add_member(ctx, inference_cap=100_000, training_cap=100_000)
    period = ctx.clock.now().strftime("%Y-%m")
    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        await _warmed_up(ctx, client)
        charged_before = [await counter(ctx, member.user_id, period, kind) for kind in KINDS]
        monkeypatch.setattr(wal_flush, "_flush", _unconfirmed)
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
        with pytest.raises(openai.APIStatusError) as refused_embedding:
            await client.embeddings.create(model=EMBEDDING, input="hello")
        stream = await client.chat.completions.create(
            model=CHAT, messages=HELLO, max_tokens=5, stream=True
        )
        delivered: list[str] = []
        with pytest.raises(openai.APIError, match="database is unreachable"):
            await _read(stream, delivered)
    for error in (refused.value, refused_embedding.value):
        assert (error.status_code, error.code) == (503, "database_unavailable")
    assert delivered == []
    charged = [await counter(ctx, member.user_id, period, kind) for kind in KINDS]
    assert charged == charged_before  # the holds were released


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
            await _unconfirmed(uow)
        if self.count == self.held:
            await self.release.wait()
        return await self.real(uow)


async def test_the_charge_shows_before_its_settlement_is_on_disk(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's request ends once the charge is written, not flushed: a client's next
    call on the same connection does not wait for the disk."""
    _postgresql_only(ctx)
    member = await add_member(ctx, inference_cap=100_000, training_cap=100_000)
    period = ctx.clock.now().strftime("%Y-%m")
    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        await _warmed_up(ctx, client)
        used_before, _ = await counter(ctx, member.user_id, period)
        flushes = Flushes(wal_flush._flush)
        flushes.held = 2  # the hold's barrier goes through; the settlement's waits
        monkeypatch.setattr(wal_flush, "_flush", flushes)
        answer = await asyncio.wait_for(
            client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5), 5
        )
        assert await counter(ctx, member.user_id, period) == (
            used_before + answer.usage.model_extra["tokens_charged"],  # type: ignore[union-attr]
            0,
        )
        assert gateway.state.ctx.settlements.pending == 1  # still waiting for the disk
        flushes.release.set()
        await gateway.state.ctx.settlements.drain()
    assert gateway.state.ctx.settlements.pending == 0


async def test_a_settlement_that_cannot_be_confirmed_is_retried_and_charged_once(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The retry finds the settlement the server kept, and replays it."""
    _postgresql_only(ctx)
    member = await add_member(ctx, inference_cap=100_000, training_cap=100_000)
    period = ctx.clock.now().strftime("%Y-%m")
    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        await _warmed_up(ctx, client)
        used_before, _ = await counter(ctx, member.user_id, period)
        flushes = Flushes(wal_flush._flush)
        flushes.failing = 2  # the hold's barrier goes through; the settlement's fails once
        monkeypatch.setattr(wal_flush, "_flush", flushes)
        answer = await client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
        await gateway.state.ctx.settlements.drain()
    assert "retrying" in caplog.text
    assert flushes.count == 2  # a replay reads what is there, and writes nothing to flush
    charge = answer.usage.model_extra["tokens_charged"]  # type: ignore[union-attr]
    assert await counter(ctx, member.user_id, period) == (used_before + charge, 0)
    assert await ledger_check.check(ctx) == []
