"""Calls forwarded in their own dialect: /v1/responses to an upstream marked `responses = true`,
/v1/messages to one of `kind = "anthropic"`, through the official `openai` and `anthropic`
clients. The upstream receives the body as the caller wrote it (only the model renamed), the
answer and the stream's events come back as the upstream gave them under the gateway's id and
model, and the member is charged exactly the usage the upstream reported, its cached and
reasoning tokens kept on the usage event."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.providers.config import UpstreamConfig
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.settings import Settings
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import anthropic_client, member_with_key, openai_client, serving
from tests.fakes.clock import FixedClock
from tests.fakes.native_upstream import WORDS, NativeUpstream
from tests.integration.ledger_fixtures import CHAT, PRICED, enable_priced_model
from tests.integration.test_ledger import counter

OPENAI = UpstreamConfig(
    name="responder", base_url="http://responder.test/v1", responses=True, api_key_env="RESP_KEY"
)
ANTHROPIC = UpstreamConfig(
    name="claude", base_url="http://claude.test/v1", kind="anthropic", api_key_env="CLAUDE_KEY"
)
NOW = {
    "type": "function",
    "name": "now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
HELLO: list[Any] = [{"role": "user", "content": "What time is it in Paris?"}]


def priced(prompt: int, completion: int) -> int:
    """Both models' charge: input 1.5 and output 6 platform tokens a token."""
    return math.ceil(prompt * 1.5 + completion * 6)


@pytest.fixture
def upstream() -> NativeUpstream:
    return NativeUpstream()


@pytest.fixture
async def gateway(
    settings: Settings,
    clock: FixedClock,
    ctx: Context,
    upstream: NativeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[FastAPI]:
    """The chat model behind a Responses-speaking upstream, gpt-4o-mini behind an Anthropic
    one, both priced at 1.5 and 6 and able to call tools."""
    monkeypatch.setenv("RESP_KEY", "sk-resp")
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant")
    await enable_priced_model(ctx)
    await catalog.update_model(
        ctx, Principal.command_line(), CHAT, input_rate="1.5", output_rate="6", tools=True
    )
    transport = upstream.transport()
    providers = ProviderRegistry(
        {
            CHAT: OpenAIHTTPProvider(OPENAI, "up-chat", transport=transport),
            PRICED: OpenAIHTTPProvider(ANTHROPIC, "claude-up", transport=transport),
        }
    )
    async with serving(settings, clock, providers) as application:
        yield application


@pytest.fixture
async def member(ctx: Context) -> tuple[int, str]:
    return await member_with_key(ctx)


async def booked(ctx: Context, user_id: int) -> tuple[tuple[int, int], list[tuple[Any, ...]]]:
    """(used, held) this month, and each usage event's route, tokens and details."""
    totals = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    columns = (
        UsageEvent.route,
        UsageEvent.prompt_tokens,
        UsageEvent.completion_tokens,
        UsageEvent.cached_tokens,
        UsageEvent.reasoning_tokens,
    )
    async with ctx.uow.begin(write=False) as tx:
        rows = (await tx.session.execute(select(*columns))).all()
    return totals, [tuple(row) for row in rows]


async def test_a_response_is_forwarded_as_sent_and_charged_what_the_upstream_reports(
    gateway: FastAPI, ctx: Context, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    async with openai_client(gateway, key) as client:
        response = await client.responses.create(
            model=CHAT,
            input="What time is it in Paris?",
            instructions="Be brief.",
            tools=[NOW],  # type: ignore[list-item]
            max_output_tokens=100,
            extra_body={"service_tier": "flex"},
        )
    sent = upstream.requests[0]
    assert (sent.url.path, sent.headers["authorization"]) == ("/v1/responses", "Bearer sk-resp")
    assert upstream.bodies()[0] == {
        "model": "up-chat",
        "input": "What time is it in Paris?",
        "instructions": "Be brief.",
        "tools": [NOW],
        "max_output_tokens": 100,
        "service_tier": "flex",
        "stream": False,
        "store": False,
    }
    assert (response.model, response.output_text) == (CHAT, "".join(WORDS))
    assert response.id.startswith("resp_")
    assert response.id != "resp_upstream"
    assert [item.type for item in response.output] == ["message", "function_call"]
    charge = priced(40, 24)
    assert response.usage is not None
    assert response.usage.model_extra == {"tokens_charged": charge}
    assert await booked(ctx, user_id) == ((charge, 0), [("responses", 40, 24, 8, 6)])
    assert await check.check(ctx) == []


async def test_a_streamed_response_passes_the_upstreams_events_and_charges_once(
    gateway: FastAPI, ctx: Context, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    async with openai_client(gateway, key) as client:
        stream = await client.responses.create(model=CHAT, input="Hi", stream=True)
        events = [event async for event in stream]
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.output_text.delta"] * len(WORDS),
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.output_item.done",
        "response.completed",
    ]
    first, last = events[0], events[-1]
    assert first.response.id == last.response.id  # type: ignore[union-attr]
    assert last.response.model == CHAT  # type: ignore[union-attr]
    usage = last.response.usage  # type: ignore[union-attr]
    assert (usage.input_tokens, usage.output_tokens) == (40, 24)
    assert usage.model_extra == {"tokens_charged": priced(40, 24)}
    assert upstream.bodies()[0]["stream"] is True
    assert await booked(ctx, user_id) == ((priced(40, 24), 0), [("responses", 40, 24, 8, 6)])


async def test_a_message_is_forwarded_with_anthropics_headers_and_charged_its_usage(
    gateway: FastAPI, ctx: Context, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    tool = {"name": "now", "input_schema": {"type": "object"}}
    async with anthropic_client(gateway, api_key=key) as client:
        message = await client.messages.create(
            model=PRICED,
            system="Be brief.",
            messages=HELLO,
            max_tokens=64,
            tools=[tool],  # type: ignore[list-item]
            top_k=5,
            metadata={"user_id": "u-7"},
        )
    sent = upstream.requests[0]
    assert sent.url.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers  # the member's key never goes upstream
    assert upstream.bodies()[0] == {
        "model": "claude-up",
        "system": "Be brief.",
        "messages": HELLO,
        "max_tokens": 64,
        "tools": [tool],
        "top_k": 5,
        "metadata": {"user_id": "u-7"},
        "stream": False,
    }
    assert (message.model, message.stop_reason) == (PRICED, "tool_use")
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.id.startswith("msg-")
    charge = priced(44, 20)  # 30 new + 4 written to the cache + 10 read from it, 20 out
    assert message.usage.model_extra == {"tokens_charged": charge}
    assert await booked(ctx, user_id) == ((charge, 0), [("messages", 44, 20, 10, 0)])
    assert await check.check(ctx) == []


async def test_a_streamed_message_keeps_anthropics_events_and_ends_with_the_charge(
    gateway: FastAPI, ctx: Context, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    async with (
        anthropic_client(gateway, auth_token=key) as client,
        client.messages.stream(model=PRICED, messages=HELLO, max_tokens=64) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "".join(WORDS)
    assert (final.model, final.stop_reason, final.usage.output_tokens) == (PRICED, "tool_use", 20)
    assert upstream.bodies()[0]["stream"] is True
    assert await booked(ctx, user_id) == ((priced(44, 20), 0), [("messages", 44, 20, 10, 0)])


async def test_the_events_are_named_and_the_last_carries_tokens_charged(
    gateway: FastAPI, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    body = {"model": PRICED, "messages": HELLO, "max_tokens": 64, "stream": True}
    headers = {
        "x-api-key": member[1],
        "anthropic-version": "2024-01-01",
        "anthropic-beta": "tools-2024-05-16",
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post("https://qm.test/v1/messages", json=body, headers=headers)
    names = re.findall(r"^event: (\w+)$", answer.text, re.MULTILINE)
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(WORDS),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert f'"tokens_charged":{priced(44, 20)}' in answer.text.split("event: message_delta")[1]
    sent = upstream.requests[0].headers  # the caller's dialect headers go with the call
    assert (sent["anthropic-version"], sent["anthropic-beta"]) == ("2024-01-01", "tools-2024-05-16")


async def test_a_stream_cut_midway_ends_with_an_error_event_and_charges_what_was_sent(
    gateway: FastAPI, ctx: Context, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    user_id, key = member
    upstream.cut_after = 5  # the created events and the first two words, then nothing
    body = {"model": CHAT, "input": "Hi", "stream": True}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post(
            "https://qm.test/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}
        )
    names = re.findall(r"^event: ([\w.]+)$", answer.text, re.MULTILINE)
    assert names[-1] == "error"
    assert "response.completed" not in names
    assert '"sequence_number":5' in answer.text.split("event: error")[1]
    (used, held), events = await booked(ctx, user_id)
    assert held == 0
    assert used > 0
    assert [event[0] for event in events] == ["responses"]
    assert await check.check(ctx) == []


async def test_a_refusal_comes_before_anything_is_sent_upstream(
    gateway: FastAPI, upstream: NativeUpstream, member: tuple[int, str]
) -> None:
    body = {"model": CHAT, "input": "Hi", "previous_response_id": "resp_1"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post(
            "https://qm.test/v1/responses",
            json=body,
            headers={"authorization": f"Bearer {member[1]}"},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "previous_response_id"
    assert upstream.requests == []
