"""OpenAI's chat fields through the official client: honoured, forwarded, or refused by name —
never silently dropped when they would change the answer or its cost."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "Say hello"}]
TOOL = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


async def _member(ctx: Context) -> tuple[int, str]:
    member = await add_member(ctx, inference_cap=100_000)
    return member.user_id, await key_for(ctx, member.user_id)


async def _refused(
    gateway: FastAPI, key: str, messages: list[Any], extra: dict[str, Any] | None = None
) -> openai.BadRequestError:
    """The 400 a chat with these messages and extra fields gets through the official client."""
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model=CHAT, messages=messages, max_tokens=20, extra_body=extra
            )
    return refused.value


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [TOOL]}, "tools"),
        ({"functions": [TOOL["function"]]}, "functions"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "logprobs"),
    ],
)
async def test_what_the_model_cannot_do_is_refused_by_name(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    """The catalog says the model takes text only: more choices, tools or log probabilities
    would change what the caller gets, so they are refused before anything is held or sent,
    with the model named and the way to enable it."""
    user_id, key = await _member(ctx)
    refused = await _refused(gateway, key, HELLO, extra)
    assert refused.param == param
    assert refused.code in ("unsupported_parameter", "unsupported_value")
    assert CHAT in refused.message
    assert fake.requests == []
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_an_image_for_a_model_without_vision_is_refused_not_dropped(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    """Answering as though the image were not there would be a wrong answer, and charged."""
    _, key = await _member(ctx)
    message = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}
    refused = await _refused(gateway, key, [message])
    assert refused.param == "messages[0].content[1]"
    assert "images" in refused.message
    assert "qm models set" in refused.message
    assert fake.requests == []


CALL = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "assistant", "content": None, "tool_calls": [CALL]}, "messages[1].tool_calls"),
        ({"role": "tool", "content": "12:00", "tool_call_id": "c1"}, "messages[1].role"),
    ],
)
async def test_a_conversation_with_tool_calls_needs_a_model_that_takes_tools(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, message: dict[str, Any], param: str
) -> None:
    """Sent as text, a tool call would become an empty turn and its result a stray one."""
    _, key = await _member(ctx)
    assert (await _refused(gateway, key, [*HELLO, message])).param == param
    assert fake.requests == []


async def test_fields_the_gateway_does_not_read_reach_the_upstream_as_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    """Defaults sent explicitly, OpenAI's bookkeeping fields and fields no one has heard of are
    forwarded untouched; only our own extensions stay behind."""
    _, key = await _member(ctx)
    unknown = {"n": 1, "logprobs": False, "store": False, "future_field": {"deep": [1, "x"]}}
    async with openai_client(gateway, key) as client:
        answer = await client.chat.completions.create(
            model=CHAT,
            messages=HELLO,
            max_tokens=20,
            metadata={"team": "blue"},
            response_format={"type": "text"},
            extra_body={**unknown, "persona": "Be brief."},
        )
    assert answer.choices[0].message.content == fake.reply
    (sent,) = fake.bodies()
    assert {name: sent[name] for name in unknown} == unknown
    assert sent["metadata"] == {"team": "blue"}
    assert sent["response_format"] == {"type": "text"}
    assert "persona" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_the_sampling_fields_reach_the_upstream_as_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    _, key = await _member(ctx)
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    async with openai_client(gateway, key) as client:
        await client.chat.completions.create(
            model=CHAT,
            messages=HELLO,
            max_tokens=20,
            top_p=0.5,
            presence_penalty=0.25,
            frequency_penalty=-0.5,
            seed=7,
            response_format=response_format,  # type: ignore[arg-type]
        )
    (sent,) = fake.bodies()
    assert sent["top_p"] == 0.5
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.25, -0.5)
    assert sent["seed"] == 7
    assert sent["response_format"] == response_format


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _schema(schema: Any) -> dict[str, Any]:
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "s", **schema}}}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_p": 1.5}, "top_p"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format"),
        (_schema({"schema": _nested(40)}), "response_format.json_schema.schema"),
        (_schema({"schema": {"enum": ["x" * 20_000]}}), "response_format.json_schema.schema"),
    ],
)
async def test_a_sampling_field_out_of_range_names_itself(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    _, key = await _member(ctx)
    refused = await _refused(gateway, key, HELLO, extra)
    assert refused.param is not None
    assert refused.param.startswith(param)
    assert fake.requests == []
