"""Anthropic's Messages API through Anthropic's official client: answered whole and streamed, a
tool round trip, count_tokens, both ways of sending the key, errors in Anthropic's shape. What
the upstream receives is the translated chat body, and the member is charged exactly what the
upstream reported, at the model's rates."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.enterprise import model_list
from quartermaster.services.ledger import check
from quartermaster.settings import Settings
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import (
    FAKE_UPSTREAM,
    anthropic_client,
    fake,
    key_for,
    member_with_key,
    serving,
)
from tests.e2e.test_gateway_fidelity import answer, usage
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, PRICED, add_member, enable_priced_model
from tests.integration.test_ledger import counter

__all__ = ["fake"]
HELLO: list[Any] = [{"role": "user", "content": "Say hello"}]
NOW = {
    "name": "now",
    "description": "The time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALLS = [
    {
        "id": "call_a",
        "type": "function",
        "function": {"name": "now", "arguments": '{"city":"Paris"}'},
    },
    {
        "id": "call_b",
        "type": "function",
        "function": {"name": "now", "arguments": '{"city":"Tokyo"}'},
    },
]


@pytest.fixture
async def gateway(
    settings: Settings, clock: FixedClock, fake: FakeUpstream, ctx: Context
) -> AsyncIterator[FastAPI]:
    """The free chat model and gpt-4o-mini (input 1.5, output 6 a token, tools and images),
    both answered by the fake upstream."""
    await enable_priced_model(ctx)
    transport = fake.transport()
    providers = ProviderRegistry(
        {
            CHAT: OpenAIHTTPProvider(FAKE_UPSTREAM, "fake-chat", transport=transport),
            PRICED: OpenAIHTTPProvider(FAKE_UPSTREAM, "fake-priced", transport=transport),
        }
    )
    async with serving(settings, clock, providers) as application:
        yield application


@pytest.fixture
async def member(ctx: Context) -> tuple[int, str]:
    return await member_with_key(ctx)


async def used_and_held(ctx: Context, user_id: int) -> tuple[int, int]:
    return await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))


def priced(prompt: int, completion: int) -> int:
    """gpt-4o-mini's charge in platform tokens (the tests choose even counts)."""
    return prompt * 3 // 2 + completion * 6


async def test_a_message_is_answered_and_charged_what_the_upstream_reports(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.prompt_tokens = 20
    async with anthropic_client(gateway, api_key=key) as client:
        message = await client.messages.create(
            model=PRICED,
            system="Be brief.",
            messages=HELLO,
            max_tokens=50,
            stop_sequences=["END"],
            temperature=0.5,
            metadata={"user_id": "u-7"},
        )
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == fake.reply  # type: ignore[union-attr]
    assert (message.role, message.model, message.stop_reason) == ("assistant", PRICED, "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, len(fake.chunks))
    charge = priced(20, len(fake.chunks))
    assert message.usage.model_extra == {"tokens_charged": charge}
    assert message.id.startswith("msg-")
    assert message._request_id == message.id
    assert fake.bodies() == [
        {
            "model": "fake-priced",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            "max_tokens": 50,
            "stop": ["END"],
            "temperature": 0.5,
            "user": "u-7",
            "stream": False,
        }
    ]
    assert await used_and_held(ctx, user_id) == (charge, 0)
    assert await check.check(ctx) == []


@pytest.mark.parametrize("sent_as", ["api_key", "auth_token"])
async def test_the_key_is_taken_as_x_api_key_or_as_a_bearer_token(
    gateway: FastAPI, fake: FakeUpstream, member: tuple[int, str], sent_as: str
) -> None:
    async with anthropic_client(gateway, **{sent_as: member[1]}) as client:
        message = await client.messages.create(model=CHAT, messages=HELLO, max_tokens=50)
    assert message.content[0].text == fake.reply  # type: ignore[union-attr]


async def test_a_stream_ends_with_the_usage_and_is_charged_once(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.prompt_tokens = 20
    async with (
        anthropic_client(gateway, auth_token=key) as client,
        client.messages.stream(model=PRICED, messages=HELLO, max_tokens=50) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == fake.reply
    assert final.content[0].text == fake.reply  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, len(fake.chunks))
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}
    assert await used_and_held(ctx, user_id) == (priced(20, len(fake.chunks)), 0)
    assert await check.check(ctx) == []


async def test_stream_events_arrive_named_in_anthropics_order(
    gateway: FastAPI, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    body = {"model": CHAT, "messages": HELLO, "max_tokens": 50, "stream": True}
    headers = {"x-api-key": member[1], "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post("https://qm.test/v1/messages", json=body, headers=headers)
    assert answer.headers["content-type"].startswith("text/event-stream")
    names = re.findall(r"^event: (\w+)$", answer.text, re.MULTILINE)
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * len(fake.chunks),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_a_tool_round_trip(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.answer = answer({"content": None, "tool_calls": CALLS}, finish="tool_calls") | {
        "usage": usage(62, 24)
    }
    ask = [{"role": "user", "content": "What time is it in Paris and in Tokyo?"}]
    async with anthropic_client(gateway, api_key=key) as client:
        first = await client.messages.create(
            model=PRICED,
            messages=ask,  # type: ignore[arg-type]
            tools=[NOW],  # type: ignore[list-item]
            tool_choice={"type": "auto"},
            max_tokens=50,
        )
        assert first.stop_reason == "tool_use"
        assert [(b.type, b.id, b.input) for b in first.content] == [  # type: ignore[union-attr]
            ("tool_use", "call_a", {"city": "Paris"}),
            ("tool_use", "call_b", {"city": "Tokyo"}),
        ]
        fake.answer = answer({"content": "18:00 in Paris, 01:00 in Tokyo."}) | {
            "usage": usage(96, 14)
        }
        results = [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "18:00"},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "01:00"},
        ]
        second = await client.messages.create(
            model=PRICED,
            messages=[  # type: ignore[list-item]
                *ask,
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": results},
            ],
            tools=[NOW],  # type: ignore[list-item]
            max_tokens=50,
        )
    assert second.content[0].text == "18:00 in Paris, 01:00 in Tokyo."  # type: ignore[union-attr]
    assert second.stop_reason == "end_turn"
    sent_first, sent_second = fake.bodies()
    assert sent_first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "now",
                "parameters": NOW["input_schema"],
                "description": "The time in a city.",
            },
        }
    ]
    assert sent_first["tool_choice"] == "auto"
    assert sent_second["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": CALLS},
        {"role": "tool", "tool_call_id": "call_a", "content": "18:00"},
        {"role": "tool", "tool_call_id": "call_b", "content": "01:00"},
    ]
    assert await used_and_held(ctx, user_id) == (priced(62, 24) + priced(96, 14), 0)
    assert await check.check(ctx) == []


async def test_count_tokens_counts_the_prompt_as_the_hold_does_and_is_free(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    await catalog.update_model(ctx, Principal.command_line(), CHAT, tools=True)
    prompt: dict[str, Any] = {"system": "Be brief.", "messages": HELLO, "tools": [NOW]}
    async with anthropic_client(gateway, api_key=key) as client:
        counted = await client.messages.count_tokens(model=CHAT, **prompt)
        assert fake.requests == []
        assert await used_and_held(ctx, user_id) == (0, 0)
        message = await client.messages.create(model=CHAT, max_tokens=50, **prompt)
    async with ctx.uow.begin(write=False) as tx:
        held = await tx.session.scalar(
            select(UsageEvent.held).where(UsageEvent.request_id == message.id)
        )
    assert counted.input_tokens > 0
    assert held == counted.input_tokens + 50  # the free model's rates are 1 and 1


def error_of(exc: anthropic.APIStatusError) -> dict[str, Any]:
    """The error object, after checking the body is Anthropic's error shape."""
    body = exc.response.json()
    assert set(body) == {"type", "error"}
    assert body["type"] == "error"
    error: dict[str, Any] = body["error"]
    return error


async def test_count_tokens_needs_a_model_the_caller_may_use(
    gateway: FastAPI, ctx: Context, member: tuple[int, str]
) -> None:
    added = await add_member(ctx, inference_cap=100_000)
    await model_list.set_allowed(ctx, Principal.command_line(), added.org_id, [PRICED])
    async with anthropic_client(gateway, api_key=await key_for(ctx, added.user_id)) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await client.messages.count_tokens(model=CHAT, messages=HELLO)
        with pytest.raises(anthropic.NotFoundError) as unknown:
            await client.messages.count_tokens(model="no-such-model", messages=HELLO)
    assert error_of(refused.value)["type"] == "permission_error"
    assert error_of(unknown.value)["type"] == "not_found_error"
