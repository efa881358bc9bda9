"""A stream that stops early — the client went away, or the task was cancelled — is settled
for what was generated; one stopped before anything was generated is released. A call is booked
by the route it came by, with the upstream's usage details."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import metering
from quartermaster.services.context import Context
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import FAKE_UPSTREAM
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_ledger import counter

CALL = metering.ChatCall(
    CHAT, {"messages": [{"role": "user", "content": "Say hello"}]}, max_tokens=100
)


def _registry(fake: FakeUpstream, model: str = CHAT) -> ProviderRegistry:
    return ProviderRegistry(
        {model: OpenAIHTTPProvider(FAKE_UPSTREAM, "fake", transport=fake.transport())}
    )


async def _prepared(ctx: Context, fake: FakeUpstream) -> tuple[int, metering.PreparedChat]:
    member = await add_member(ctx, inference_cap=10_000)
    principal = Principal(member.user_id, False, False, "api_key")
    return member.user_id, await metering.prepare_chat(ctx, _registry(fake), principal, CALL)


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


async def _event(ctx: Context, user_id: int) -> UsageEvent:
    await ctx.settlements.drain()
    async with ctx.uow.begin(write=False) as tx:
        booked = await tx.session.scalar(select(UsageEvent).where(UsageEvent.user_id == user_id))
    assert booked is not None
    return booked


def _answer(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, object]:
    message = {"role": "assistant", "content": "Hi"}
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


@pytest.mark.parametrize(
    ("reported", "booked"),
    [((20, 6, 8, 5), (8, 5)), ((20, 6, 30, 9), (20, 6))],
    ids=["parts", "more-than-the-totals"],
)
async def test_a_chat_is_booked_by_its_route_with_the_upstreams_usage_details(
    ctx: Context, reported: tuple[int, int, int, int], booked: tuple[int, int]
) -> None:
    """Details above their totals (an upstream counting its cache apart) are booked as the
    whole total: informational, they must never stop the charge."""
    member = await add_member(ctx, inference_cap=10_000)
    principal = Principal(member.user_id, False, False, "api_key")
    fake = FakeUpstream(answer=_answer(*reported))
    chat = await metering.prepare_chat(ctx, _registry(fake), principal, CALL, route=Route.RESPONSES)
    answer = await metering.complete(ctx, chat)
    assert answer.tokens_charged == 20 + 6
    event = await _event(ctx, member.user_id)
    assert (event.route, event.prompt_tokens, event.completion_tokens) == ("responses", 20, 6)
    assert (event.cached_tokens, event.reasoning_tokens) == booked


async def test_an_embedding_is_booked_by_the_embeddings_route(ctx: Context) -> None:
    member = await add_member(ctx, training_cap=10_000)
    principal = Principal(member.user_id, False, False, "api_key")
    registry = _registry(FakeUpstream(), EMBEDDING)
    await metering.embed(ctx, registry, principal, EMBEDDING, ["the boiler is serviced in May"])
    event = await _event(ctx, member.user_id)
    assert (event.route, event.kind) == ("embeddings", "training")
