"""Chat completions at full fidelity, through the official `openai` client: tools and their
round trip, images, several choices, log probabilities, streamed tool calls. What the caller
sent arrives upstream as sent, the answer comes back as the upstream gave it, and the member
is charged exactly what the upstream reported."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
ASK = [{"role": "user", "content": "What time is it in Paris and in Tokyo?"}]
NOW = {
    "type": "function",
    "function": {
        "name": "now",
        "description": "The time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
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


def usage(prompt: int, completion: int, **details: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        **details,
    }


def answer(*messages: dict[str, Any], finish: str = "stop", **more: Any) -> dict[str, Any]:
    choices = [
        {"index": i, "message": {"role": "assistant", **m}, "finish_reason": finish, **more}
        for i, m in enumerate(messages)
    ]
    return {"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "choices": choices}


@pytest.fixture
async def member(ctx: Context) -> tuple[int, str]:
    """A member, and the chat model able to do what OpenAI's models do."""
    await catalog.update_model(
        ctx,
        Principal.command_line(),
        CHAT,
        tools=True,
        vision=True,
        logprobs=True,
        max_choices=4,
        image_tokens=1445,
    )
    added = await add_member(ctx, inference_cap=100_000)
    return added.user_id, await key_for(ctx, added.user_id)


async def used(ctx: Context, user_id: int) -> int:
    return (await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")))[0]


async def held(ctx: Context, request_id: str) -> int:
    async with ctx.uow.begin(write=False) as tx:
        found = await tx.session.scalar(
            select(UsageEvent.held).where(UsageEvent.request_id == request_id)
        )
    assert found is not None
    return found


async def test_a_tool_call_round_trip_with_parallel_calls(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.answer = answer({"content": None, "tool_calls": CALLS}, finish="tool_calls") | {
        "usage": usage(61, 24)
    }
    async with openai_client(gateway, key) as client:
        first = await client.chat.completions.create(
            model=CHAT,
            messages=ASK,
            tools=[NOW],
            tool_choice="auto",
            parallel_tool_calls=True,
            max_tokens=50,
        )
        calls = first.choices[0].message.tool_calls or []
        assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
            ("call_a", "now", '{"city":"Paris"}'),
            ("call_b", "now", '{"city":"Tokyo"}'),
        ]
        assert first.choices[0].finish_reason == "tool_calls"
        conversation = [
            *ASK,
            {"role": "assistant", "content": None, "tool_calls": CALLS},
            {"role": "tool", "tool_call_id": "call_a", "content": "18:00"},
            {"role": "tool", "tool_call_id": "call_b", "content": "01:00"},
        ]
        fake.answer = answer({"content": "18:00 in Paris, 01:00 in Tokyo."}) | {
            "usage": usage(95, 13)
        }
        second = await client.chat.completions.create(
            model=CHAT,
            messages=conversation,
            tools=[NOW],
            max_tokens=50,
        )
    assert second.choices[0].message.content == "18:00 in Paris, 01:00 in Tokyo."
    sent_first, sent_second = fake.bodies()
    assert sent_first["tools"] == [NOW]
    assert (sent_first["tool_choice"], sent_first["parallel_tool_calls"]) == ("auto", True)
    assert sent_second["messages"] == conversation
    assert first.usage is not None
    assert second.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (61, 24)
    assert await used(ctx, user_id) == 61 + 24 + 95 + 13  # rates of 1: exactly as reported
    assert await check.check(ctx) == []


async def test_streamed_tool_calls_arrive_whole(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.answer = answer({"content": None, "tool_calls": CALLS}, finish="tool_calls") | {
        "usage": usage(61, 24)
    }
    arguments: dict[int, str] = {}
    async with openai_client(gateway, key) as client:
        stream = await client.chat.completions.create(
            model=CHAT,
            messages=ASK,
            tools=[NOW],
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function.arguments or "" if call.function else ""
                )
    assert arguments == {0: '{"city":"Paris"}', 1: '{"city":"Tokyo"}'}
    finishes = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 85
    assert {chunk.id for chunk in chunks} == {chunks[0].id}  # ours, not the upstream's
    assert await used(ctx, user_id) == 85
    assert await check.check(ctx) == []


def png(width: int, height: int) -> str:
    """A real PNG of the given size (one grey row repeated), as a data URL."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + b"\x80" * width) * height)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
    return "data:image/png;base64," + base64.b64encode(data + chunk(b"IEND", b"")).decode()


async def test_an_image_reaches_the_upstream_and_is_held_by_its_size(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    """A 1024 × 1024 image is 4 tiles on gpt-4o's formula (765 tokens): the hold covers it."""
    user_id, key = member
    image = {"type": "image_url", "image_url": {"url": png(1024, 1024), "detail": "high"}}
    message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}
    fake.answer = answer({"content": "A grey square."}) | {"usage": usage(780, 5)}
    async with openai_client(gateway, key) as client:
        reply = await client.chat.completions.create(
            model=CHAT,
            messages=[message],
            max_tokens=20,
        )
    assert fake.bodies()[0]["messages"] == [message]
    assert await held(ctx, reply.id) >= 765 + 20
    assert await used(ctx, user_id) == 785


async def test_an_image_that_is_not_an_image_is_refused_by_its_place(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    lying = "data:image/png;base64," + base64.b64encode(b"not a picture at all").decode()
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": lying}}]}
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model=CHAT, messages=[message], max_tokens=5)
    assert refused.value.param == "messages[0].content[0].image_url"
    assert fake.requests == []
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_several_choices_are_returned_and_held_for_each(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.answer = answer({"content": "Red."}, {"content": "Blue."}) | {"usage": usage(12, 4)}
    async with openai_client(gateway, key) as client:
        reply = await client.chat.completions.create(model=CHAT, messages=ASK, max_tokens=30, n=2)
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model=CHAT, messages=ASK, max_tokens=30, n=5)
    assert [c.message.content for c in reply.choices] == ["Red.", "Blue."]
    assert await held(ctx, reply.id) >= 2 * 30
    assert fake.bodies()[0]["n"] == 2
    assert refused.value.param == "n"
    assert "at most 4" in refused.value.message
    assert await used(ctx, user_id) == 16


async def test_log_probabilities_and_usage_details_come_back_unchanged(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    _, key = member
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.25,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.25, "bytes": None}],
            }
        ]
    }
    details = {
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    fake.answer = answer({"content": "Hi"}, logprobs=logprobs) | {"usage": usage(20, 6, **details)}
    async with openai_client(gateway, key) as client:
        reply = await client.chat.completions.create(
            model=CHAT, messages=ASK, max_tokens=30, logprobs=True, top_logprobs=1
        )
        stream = await client.chat.completions.create(
            model=CHAT,
            messages=ASK,
            max_tokens=30,
            logprobs=True,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert reply.choices[0].logprobs is not None
    assert reply.choices[0].logprobs.model_dump(exclude_none=True) == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.25,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.25}],
            }
        ]
    }
    assert reply.usage is not None
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 8
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 5
    streamed = [c.logprobs for chunk in chunks for c in chunk.choices if c.logprobs]
    assert streamed
    assert streamed[0].content is not None
    assert streamed[0].content[0].token == "Hi"
    assert reply.model_extra is not None
    assert reply.usage.model_extra is not None
    assert reply.usage.model_extra["tokens_charged"] == 26


async def test_the_model_list_says_what_each_model_can_do(
    gateway: FastAPI, member: tuple[int, str]
) -> None:
    _, key = member
    async with openai_client(gateway, key) as client:
        listed = {model.id: model.model_extra for model in (await client.models.list()).data}
    assert listed[CHAT] is not None
    assert listed[CHAT]["capabilities"] == {
        "tools": True,
        "vision": True,
        "audio_input": False,
        "logprobs": True,
        "max_choices": 4,
    }
