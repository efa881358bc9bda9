"""Anthropic's Messages request checked as Anthropic defines it: what the gateway cannot honour
is refused by the name of the field as the caller wrote it, before anything is held."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.anthropic_request import (
    UNTAKEN,
    CountTokensRequest,
    MessagesRequest,
    read,
)

ASK = {"role": "user", "content": "What time is it in Paris?"}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def refusal(model: type[CountTokensRequest] = MessagesRequest, **fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read(model, {"model": "m", "max_tokens": 64, "messages": [ASK], **fields})
    return caught.value


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": PNG | {"data": ""}}]}
                ]
            },
            "messages[0].content[0].source.data",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi", "colour": 1}]}
                ]
            },
            "messages[0].content[0].colour",
        ),
        ({"system": [{"type": "text"}]}, "system[0].text"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]},
            "tools[0].type",
        ),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking"),
        ({"container": "c-1"}, "container"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_its_field(
    fields: dict[str, Any], param: str
) -> None:
    refused = refusal(**fields)
    assert refused.param == param
    assert refused.message.startswith(f"{refused.param}: ")


def test_a_server_tool_is_named_as_one() -> None:
    refused = refusal(tools=[{"type": "bash_20250124", "name": "bash"}])
    assert "bash_20250124 is one of Anthropic's server tools" in refused.message


def test_a_count_refuses_generation_fields() -> None:
    assert refusal(CountTokensRequest).param == "max_tokens"


def test_max_tokens_is_required() -> None:
    with pytest.raises(InvalidInput) as caught:
        read(MessagesRequest, {"model": "m", "messages": [ASK]})
    assert caught.value.param == "max_tokens"


def test_a_field_the_gateway_does_not_take_is_named() -> None:
    assert refusal(container="c-1").message == f"container: {UNTAKEN}"


def test_thinking_disabled_and_cache_control_are_taken() -> None:
    taken = read(
        MessagesRequest,
        {
            "model": "m",
            "max_tokens": 64,
            "messages": [ASK],
            "system": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "disabled"},
        },
    )
    assert taken.thinking is not None
