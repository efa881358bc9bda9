"""The hold is an upper bound: over a varied corpus of calls — text, names, tools and tool calls,
images, several choices, streams, schemas — no call is charged more than was held, for the
embedded model (its real counts) and for an upstream that bills as OpenAI documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.domain.principal import Principal
from quartermaster.providers import images
from quartermaster.providers.prompt_count import message_text
from quartermaster.providers.tokenizer import BpeTokenizer
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.e2e.test_gateway_fidelity import NOW, png
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member

__all__ = ["fake", "gateway"]
BPE = BpeTokenizer()
CITY = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Today's weather.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "A city name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
LONG = " ".join(f"word{i}" for i in range(400))
CORPUS: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": LONG, "name": "ann"},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Summarise."},
        ],
        "max_tokens": 20,
    },
    {"messages": [{"role": "user", "content": "Weather?"}], "tools": [NOW, CITY], "max_tokens": 30},
    {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Snow, -4 C."},
        ],
        "tools": [CITY],
        "max_tokens": 30,
    },
    {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe both."},
                    {"type": "image_url", "image_url": {"url": png(1024, 1024)}},
                    {"type": "image_url", "image_url": {"url": png(300, 2000), "detail": "low"}},
                ],
            }
        ],
        "max_tokens": 25,
    },
    {"messages": [{"role": "user", "content": "Three names."}], "n": 3, "max_tokens": 10},
    {"messages": [{"role": "user", "content": "Stream this."}], "stream": True, "max_tokens": 12},
    {"messages": [{"role": "user", "content": "Two."}], "stream": True, "n": 2, "max_tokens": 9},
    {
        "messages": [{"role": "user", "content": "A colour as JSON."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": {"type": "object"}},
        },
        "max_tokens": 15,
    },
    {
        "messages": [{"role": "user", "content": "Go on."}],
        "persona": "Be a pirate.",
        "max_tokens": 9,
    },
]


def openai_prompt_bill(body: dict[str, Any]) -> int:
    """Prompt tokens as OpenAI documents them (the cookbook's counting for messages and for
    function definitions, the tile formula for images) — written apart from the gateway's
    count, which holds tools at their whole JSON."""
    messages = [*([{"role": "system", "content": body["persona"]}] if "persona" in body else [])]
    tokens = 3
    for message in [*messages, *body["messages"]]:
        tokens += 3 + BPE.count(message["role"]) + BPE.count(message_text(message["content"]))
        tokens += 1 + BPE.count(message["name"]) if "name" in message else 0
        for call in message.get("tool_calls") or ():
            tokens += BPE.count(call["function"]["name"] + call["function"]["arguments"])
        for part in message["content"] if isinstance(message["content"], list) else ():
            if part["type"] == "image_url":
                data = images.data_url_bytes(part["image_url"]["url"])
                detail = part["image_url"].get("detail", "auto")
                tokens += images.tile_tokens(*images.pixel_size(data), detail)
    return (
        tokens
        + sum(_function_bill(tool["function"]) for tool in body.get("tools", ()))
        + (12 if body.get("tools") else 0)
    )


def _function_bill(function: dict[str, Any]) -> int:
    tokens = 7 + BPE.count(f"{function['name']}:{function.get('description', '')}")
    properties = function.get("parameters", {}).get("properties", {})
    tokens += 3 if properties else 0
    for key, spec in properties.items():
        tokens += 3 + BPE.count(f"{key}:{spec['type']}:{spec.get('description', '')}")
        tokens += sum(3 + BPE.count(item) for item in spec.get("enum", ())) - 3 * bool(
            "enum" in spec
        )
    return tokens


def canned(body: dict[str, Any]) -> dict[str, Any]:
    """An answer using every output token asked for, in every choice, billed as OpenAI would."""
    n, limit = body.get("n", 1), body["max_tokens"]
    words = " ".join(["ok"] * limit)
    choices = [
        {"index": i, "message": {"role": "assistant", "content": words}, "finish_reason": "length"}
        for i in range(n)
    ]
    prompt = openai_prompt_bill(body)
    usage = {"prompt_tokens": prompt, "completion_tokens": n * limit, "total_tokens": 0}
    return {"id": "x", "object": "chat.completion", "choices": choices, "usage": usage}


async def overruns(ctx: Context) -> list[tuple[int, int]]:
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(select(UsageEvent.tokens, UsageEvent.held))
    return [(tokens, held) for tokens, held in rows if tokens > held]


async def _call(client: Any, body: dict[str, Any]) -> None:
    extra = {"persona": body["persona"]} if "persona" in body else None
    fields = {key: value for key, value in body.items() if key != "persona"}
    if fields.get("stream"):
        fields["stream_options"] = {"include_usage": True}
        async for _ in await client.chat.completions.create(model=CHAT, extra_body=extra, **fields):
            pass
        return
    await client.chat.completions.create(model=CHAT, extra_body=extra, **fields)


async def test_no_call_to_an_openai_billed_upstream_costs_more_than_its_hold(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    await catalog.update_model(
        ctx,
        Principal.command_line(),
        CHAT,
        tools=True,
        vision=True,
        max_choices=4,
        image_tokens=1445,
    )
    member = await add_member(ctx, inference_cap=1_000_000)
    async with openai_client(gateway, await key_for(ctx, member.user_id)) as client:
        for body in CORPUS:
            fake.answer = canned(body)
            await _call(client, body)
    assert len(fake.requests) == len(CORPUS)
    assert await overruns(ctx) == []
    assert await check.check(ctx) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_call_to_the_embedded_model_costs_more_than_its_hold(
    app: FastAPI, ctx: Context
) -> None:
    """Counted with SmolLM2's own tokenizer and chat template: "hi" is held as the 31 tokens
    the model reads, not the 1 of its text."""
    member = await add_member(ctx, inference_cap=1_000_000)
    plain = [body for body in CORPUS if not {"tools", "n"} & set(body) and _text_only(body)]
    async with openai_client(app, await key_for(ctx, member.user_id)) as client:
        for body in plain:
            await _call(client, body)
    assert await overruns(ctx) == []
    async with ctx.uow.begin(write=False) as tx:
        first = select(UsageEvent.prompt_tokens, UsageEvent.held).order_by(UsageEvent.id)
        hi = (await tx.session.execute(first)).first()
    assert hi is not None
    prompt, held = hi
    assert prompt > 20  # the template's framing and default system prompt
    assert held - 8 == prompt  # held exactly: the prompt and the 8 tokens asked for


def _text_only(body: dict[str, Any]) -> bool:
    return all(isinstance(m["content"], str) for m in body["messages"])


def test_the_reference_bill_is_not_the_gateways_count() -> None:
    """The corpus would prove nothing if both sides were the same function: for tools they
    differ (the cookbook's form is shorter than the JSON the gateway holds)."""
    with_tools = CORPUS[2]
    assert openai_prompt_bill(with_tools) < BPE.count(json.dumps(with_tools["tools"]))
    assert openai_prompt_bill(CORPUS[0]) == 8  # 3 + 3 + "user" + "hi"
