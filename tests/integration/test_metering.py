"""A stream that stops early — the client went away, or the task was cancelled — is settled
for what was generated; one stopped before anything was generated is released."""

from __future__ import annotations

import asyncio

from quartermaster.domain.principal import Principal
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import metering
from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import FAKE_UPSTREAM
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

CALL = metering.ChatCall(
    CHAT, {"messages": [{"role": "user", "content": "Say hello"}]}, max_tokens=100
)


async def _prepared(ctx: Context, fake: FakeUpstream) -> tuple[int, metering.PreparedChat]:
    member = await add_member(ctx, inference_cap=10_000)
    registry = ProviderRegistry(
        {CHAT: OpenAIHTTPProvider(FAKE_UPSTREAM, "fake", transport=fake.transport())}
    )
    principal = Principal(member.user_id, False, False, "api_key")
    return member.user_id, await metering.prepare_chat(ctx, registry, principal, CALL)


async def test_a_stream_closed_by_the_client_is_charged_for_what_was_sent(ctx: Context) -> None:
    fake = FakeUpstream(reply="one two three four five six")
    user_id, chat = await _prepared(ctx, fake)
    period = ctx.clock.now().strftime("%Y-%m")
    assert await counter(ctx, user_id, period) == (0, chat.prompt_tokens + 100)
    pieces = aiter(metering.ChatStream(ctx, chat))
    received = [(await anext(pieces)).delta for _ in range(2)]
    await pieces.aclose()
    await ctx.settlements.drain()  # booked by itself, with nobody waiting for it
    used, reserved = await counter(ctx, user_id, period)
    assert reserved == 0
    assert used == chat.prompt_tokens + chat.tokenizer.count("".join(received))


async def test_a_cancelled_stream_still_settles(ctx: Context) -> None:
    fake = FakeUpstream(reply="one two three four", stall_s=30, stall_after_chunks=2)
    user_id, chat = await _prepared(ctx, fake)

    async def consume() -> None:
        async for _ in metering.ChatStream(ctx, chat):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ctx.settlements.drain()
    used, reserved = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    assert reserved == 0
    assert used == chat.prompt_tokens + chat.tokenizer.count("one two")


async def test_a_stream_closed_before_any_token_is_released(ctx: Context) -> None:
    user_id, chat = await _prepared(ctx, FakeUpstream())
    await metering.ChatStream(ctx, chat).close()
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)
