"""A chat does not read its API key when the gateway checked it a moment ago
(services/identity/known_keys.py); the statement that takes the hold checks it instead. Each test
makes one call (so the key is remembered), changes the key behind the gateway's back, and calls
again: the change must hold on that very call."""

from __future__ import annotations

from datetime import timedelta

import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys
from quartermaster.store.models import ApiKey, Hold
from tests.e2e.gateway_fixtures import fake, gateway, openai_client
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "Say hello"}]


async def _member_key(ctx: Context, expires_in_s: int | None = None) -> tuple[int, str]:
    member = await add_member(ctx, inference_cap=100_000)
    now = ctx.clock.now()
    expires_at = now + timedelta(seconds=expires_in_s) if expires_in_s else None
    async with ctx.uow.begin() as tx:
        issued = await api_keys.issue(tx.session, member.user_id, "test", now, expires_at)
        await tx.commit()
    return member.user_id, issued.secret


async def _chat(app: FastAPI, key: str, **extra: object) -> str | None:
    async with openai_client(app, key) as client:
        answer = await client.chat.completions.create(
            model=CHAT, messages=HELLO, max_tokens=20, extra_body=extra or None
        )
    return answer.choices[0].message.content


async def _refused(app: FastAPI, key: str, **extra: object) -> openai.AuthenticationError:
    with pytest.raises(openai.AuthenticationError) as refused:
        await _chat(app, key, **extra)
    return refused.value


async def _holds(ctx: Context, user_id: int) -> int:
    async with ctx.uow.begin(write=False) as tx:
        return len((await tx.session.scalars(select(Hold).where(Hold.user_id == user_id))).all())


async def _revoke(ctx: Context, key: str) -> None:
    async with ctx.uow.begin() as tx:
        await tx.session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == api_keys.key_hash(key))
            .values(revoked_at=ctx.clock.now())
        )
        await tx.commit()


async def test_a_key_revoked_after_a_call_is_refused_on_the_next(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member_key(ctx)
    assert await _chat(gateway, key) == fake.reply
    used = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    await _revoke(ctx, key)
    refused = await _refused(gateway, key)
    assert refused.code == "invalid_api_key"
    assert len(fake.requests) == 1  # nothing went upstream for the revoked key
    assert await _holds(ctx, user_id) == 1  # and nothing was held for it
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == used


async def test_embeddings_with_a_key_revoked_after_a_call_are_refused(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        await client.embeddings.create(model=EMBEDDING, input=["one"])
        await _revoke(ctx, key)
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.embeddings.create(model=EMBEDDING, input=["two"])
    assert refused.value.code == "invalid_api_key"
    assert len(fake.requests) == 1
    assert await _holds(ctx, user_id) == 1


async def test_a_key_that_expires_between_two_calls_is_refused_as_expired(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, clock: FixedClock
) -> None:
    user_id, key = await _member_key(ctx, expires_in_s=10)
    assert await _chat(gateway, key) == fake.reply
    clock.advance(seconds=11)  # well inside the minute the key is remembered for
    refused = await _refused(gateway, key)
    assert refused.code == "expired_api_key"
    assert len(fake.requests) == 1
    assert await _holds(ctx, user_id) == 1


async def _remembered_then_revoked(app: FastAPI, ctx: Context) -> str:
    """A key that answered one call (so the gateway remembers it), revoked since."""
    _, key = await _member_key(ctx)
    await _chat(app, key)
    await _revoke(ctx, key)
    return key


async def test_a_revoked_key_learns_nothing_about_the_catalog(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    key = await _remembered_then_revoked(gateway, ctx)
    async with openai_client(gateway, key) as client:
        for model in ("no-such-model", EMBEDDING):  # a 404, and a 400 for the wrong route
            with pytest.raises(openai.AuthenticationError) as refused:
                await client.chat.completions.create(model=model, messages=HELLO)
            assert refused.value.code == "invalid_api_key"


async def test_a_revoked_key_reads_no_dataset(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    key = await _remembered_then_revoked(gateway, ctx)
    # An unknown dataset would be a 404 for a valid key: the key is checked before any is read.
    refused = await _refused(gateway, key, datasets=[123_456])
    assert refused.code == "invalid_api_key"


async def test_a_remembered_key_still_records_its_last_use_each_minute(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, clock: FixedClock
) -> None:
    _, key = await _member_key(ctx)
    await _chat(gateway, key)
    first_use = clock.now()
    clock.advance(seconds=30)
    await _chat(gateway, key)
    clock.advance(seconds=31)
    await _chat(gateway, key)
    async with ctx.uow.begin(write=False) as tx:
        stored = await tx.session.scalar(
            select(ApiKey.last_used_at).where(ApiKey.key_hash == api_keys.key_hash(key))
        )
    assert stored is not None
    assert stored.replace(tzinfo=first_use.tzinfo) == first_use + timedelta(seconds=61)
