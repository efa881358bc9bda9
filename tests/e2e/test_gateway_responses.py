"""The Responses API through the official `openai` client (`client.responses.create`), against
the fake upstream: answered through a chat, metered like one — the member is charged what the
upstream reported at the model's rates — and refused by its own fields' names, before anything
is held, where the gateway cannot do what it asks."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from openai.types.responses import ResponseStreamEvent

from quartermaster.domain.principal import Principal
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.e2e.test_gateway_fidelity import CALLS, answer, usage
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
INPUT_RATE, OUTPUT_RATE = 1.5, 6
NOW = {
    "type": "function",
    "name": "now",
    "description": "The time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
ASK = "What time is it in Paris and in Tokyo?"


def cost(prompt: int, completion: int) -> int:
    return math.ceil(prompt * INPUT_RATE + completion * OUTPUT_RATE)


async def _member(ctx: Context) -> tuple[int, str]:
    added = await add_member(ctx, inference_cap=100_000)
    return added.user_id, await key_for(ctx, added.user_id)


@pytest.fixture
async def member(ctx: Context) -> tuple[int, str]:
    """A member, and the chat model priced apart from 1 and able to call tools."""
    await catalog.update_model(
        ctx,
        Principal.command_line(),
        CHAT,
        input_rate=str(INPUT_RATE),
        output_rate=str(OUTPUT_RATE),
        tools=True,
    )
    return await _member(ctx)


async def charged(ctx: Context, user_id: int) -> tuple[int, int]:
    """(used, reserved) this month."""
    return await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))


async def test_a_string_input_is_answered_and_charged_what_the_upstream_reports(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    async with openai_client(gateway, key) as client:
        response = await client.responses.create(
            model=CHAT, input="Say hello", instructions="Be brief.", max_output_tokens=50
        )
    assert response.output_text == fake.reply
    assert (response.status, response.object, response.model) == ("completed", "response", CHAT)
    assert response.id.startswith("resp_")
    assert [item.type for item in response.output] == ["message"]
    assert response.output[0].id.startswith("msg_")
    sent = fake.bodies()[0]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert sent["max_completion_tokens"] == 50
    assert response.usage is not None
    replied = len(fake.chunks)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, replied)
    assert response.usage.total_tokens == 11 + replied
    assert response.usage.model_extra == {"tokens_charged": cost(11, replied)}
    assert await charged(ctx, user_id) == (cost(11, replied), 0)
    assert await check.check(ctx) == []


async def _events(client: openai.AsyncOpenAI, **request: Any) -> list[ResponseStreamEvent]:
    stream = await client.responses.create(model=CHAT, stream=True, **request)
    return [event async for event in stream]


async def test_a_stream_starts_with_created_and_ends_with_one_completed_carrying_usage(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    async with openai_client(gateway, key) as client:
        events = await _events(client, input="Say hello", max_output_tokens=50)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.completed") == 1
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == fake.reply
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == fake.reply
    assert final.response.id == events[0].response.id
    assert final.response.usage is not None
    assert final.response.usage.total_tokens == 11 + len(fake.chunks)
    assert final.response.usage.model_extra == {"tokens_charged": cost(11, len(fake.chunks))}
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}
    assert await charged(ctx, user_id) == (cost(11, len(fake.chunks)), 0)
    assert await check.check(ctx) == []


async def test_a_function_tool_round_trip(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    """The model calls two functions; their outputs go back with the calls as they came."""
    user_id, key = member
    fake.answer = answer({"content": None, "tool_calls": CALLS}, finish="tool_calls") | {
        "usage": usage(61, 24)
    }
    async with openai_client(gateway, key) as client:
        first = await client.responses.create(
            model=CHAT, input=ASK, tools=[NOW], tool_choice="auto", max_output_tokens=50
        )
        calls = [item for item in first.output if item.type == "function_call"]
        assert [(c.call_id, c.name, c.arguments) for c in calls] == [
            ("call_a", "now", '{"city":"Paris"}'),
            ("call_b", "now", '{"city":"Tokyo"}'),
        ]
        assert all(c.id is not None and c.id.startswith("fc_") for c in calls)
        outputs = [
            {"type": "function_call_output", "call_id": "call_a", "output": "18:00"},
            {"type": "function_call_output", "call_id": "call_b", "output": "01:00"},
        ]
        fake.answer = answer({"content": "18:00 in Paris, 01:00 in Tokyo."}) | {
            "usage": usage(95, 13)
        }
        second = await client.responses.create(
            model=CHAT,
            input=[{"role": "user", "content": ASK}, *calls, *outputs],  # type: ignore[list-item]
            tools=[NOW],
            max_output_tokens=50,
        )
    assert second.output_text == "18:00 in Paris, 01:00 in Tokyo."
    sent_first, sent_second = fake.bodies()
    chat_tool = {
        "type": "function",
        "function": {key: NOW[key] for key in ("name", "description", "parameters", "strict")},
    }
    assert sent_first["tools"] == [chat_tool]
    assert sent_first["tool_choice"] == "auto"
    assert sent_second["messages"] == [
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": None, "tool_calls": CALLS},
        {"role": "tool", "tool_call_id": "call_a", "content": "18:00"},
        {"role": "tool", "tool_call_id": "call_b", "content": "01:00"},
    ]
    assert await charged(ctx, user_id) == (cost(61, 24) + cost(95, 13), 0)
    assert await check.check(ctx) == []


async def test_streamed_function_calls_arrive_whole(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    fake.answer = answer({"content": None, "tool_calls": CALLS}, finish="tool_calls") | {
        "usage": usage(61, 24)
    }
    async with openai_client(gateway, key) as client:
        events = await _events(client, input=ASK, tools=[NOW], max_output_tokens=50)
    done = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    assert done == ['{"city":"Paris"}', '{"city":"Tokyo"}']
    final = events[-1]
    assert final.type == "response.completed"
    assert [(item.type, item.status) for item in final.response.output] == [
        ("function_call", "completed"),
        ("function_call", "completed"),
    ]
    assert await charged(ctx, user_id) == (cost(61, 24), 0)


async def test_an_answer_cut_at_max_output_tokens_is_incomplete(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    _, key = member
    fake.answer = answer({"content": "It is"}, finish="length") | {"usage": usage(12, 2)}
    async with openai_client(gateway, key) as client:
        response = await client.responses.create(model=CHAT, input=ASK, max_output_tokens=2)
        events = await _events(client, input=ASK, max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "It is"
    kinds = [event.type for event in events]
    assert kinds[-1] == "response.incomplete"
    assert "response.completed" not in kinds


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_earlier"}, "previous_response_id"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
    ],
)
async def test_what_needs_openais_servers_is_refused_before_anything_is_held(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    member: tuple[int, str],
    request_fields: dict[str, Any],
    param: str,
) -> None:
    user_id, key = member
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(**{"model": CHAT, "input": ASK, **request_fields})
    assert refused.value.param == param
    assert refused.value.code in ("unsupported_parameter", "unsupported_value")
    if param in ("store", "previous_response_id"):
        assert "whole conversation in `input`" in refused.value.message
    assert fake.requests == []
    assert await charged(ctx, user_id) == (0, 0)


async def test_storage_off_is_answered(
    gateway: FastAPI, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    """What Codex sends each turn: no storage, nothing to resume."""
    _, key = member
    async with openai_client(gateway, key) as client:
        response = await client.responses.create(
            model=CHAT, input=ASK, store=False, previous_response_id=None, include=[]
        )
    assert response.output_text == fake.reply
    assert "store" not in fake.bodies()[0]


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"tools": [NOW]}, "tools"),
        (
            {
                "input": [
                    {"role": "user", "content": ASK},
                    {"type": "function_call", "call_id": "c", "name": "now", "arguments": "{}"},
                ]
            },
            "input[1]",
        ),
        ({"max_output_tokens": 100_000}, "max_output_tokens"),
    ],
)
async def test_what_the_model_cannot_do_is_refused_by_the_responses_field(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    request_fields: dict[str, Any],
    param: str,
) -> None:
    """The chat's refusals (this model takes no tools; writes at most so much) name the field
    the caller sent, not the chat's."""
    user_id, key = await _member(ctx)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(**{"model": CHAT, "input": ASK, **request_fields})
    assert refused.value.param == param
    assert param.split("[")[0] in refused.value.message
    assert fake.requests == []
    assert await charged(ctx, user_id) == (0, 0)


async def test_a_stream_whose_upstream_stalls_ends_with_an_error_and_no_completion(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    fake.stall_s, fake.stall_after_chunks = 2.0, 2
    user_id, key = member
    async with openai_client(gateway, key) as client:
        events = await _events(client, input="Say hello")
    kinds = [event.type for event in events]
    assert kinds[-1] == "error"
    assert not {"response.completed", "response.incomplete"} & set(kinds)
    error = events[-1]
    assert error.type == "error"
    assert error.code == "upstream_timeout"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "".join(fake.chunks[:2])
    used, reserved = await charged(ctx, user_id)
    assert (used > 0, reserved) == (True, 0)  # the part sent, counted locally
    assert await check.check(ctx) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_embedded_model_answers_a_string_input(app: FastAPI, ctx: Context) -> None:
    """SmolLM2, offline, as `make run` serves it: the Responses API needs no upstream."""
    user_id, key = await _member(ctx)
    async with openai_client(app, key) as client:
        response = await client.responses.create(
            model=CHAT, input="Name a colour.", max_output_tokens=12
        )
    assert response.output_text
    assert response.status in ("completed", "incomplete")
    assert response.usage is not None
    assert 0 < response.usage.output_tokens <= 12
    assert await charged(ctx, user_id) == (response.usage.total_tokens, 0)  # rates of 1
