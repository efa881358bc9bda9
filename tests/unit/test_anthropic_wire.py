"""Anthropic's Messages request as the OpenAI chat body the gateway meters: what each field and
block becomes, and what is refused by the name of the field the caller wrote."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.anthropic_wire import (
    CountTokensRequest,
    MessagesRequest,
    chat_prompt,
    read,
    to_chat_body,
)

ASK = {"role": "user", "content": "What time is it in Paris?"}
NOW = {
    "name": "now",
    "description": "The time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def chat_of(**fields: Any) -> dict[str, Any]:
    return to_chat_body(read(MessagesRequest, {"model": "m", "max_tokens": 64, **fields}))


def refusal(model: type[CountTokensRequest] = MessagesRequest, **fields: Any) -> InvalidInput:
    body = {"model": "m", "max_tokens": 64, "messages": [ASK], **fields}
    with pytest.raises(InvalidInput) as caught:
        to_chat_body(read(model, body))  # type: ignore[arg-type]
    return caught.value


def test_a_plain_call_becomes_the_same_chat() -> None:
    body = chat_of(
        system=[
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in French."},
        ],
        messages=[ASK, {"role": "assistant", "content": "Il est"}],
        stop_sequences=["\n\n"],
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "u-7"},
        stream=True,
    )
    assert body == {
        "model": "m",
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Be brief."},
                    {"type": "text", "text": "Answer in French."},
                ],
            },
            {"role": "user", "content": "What time is it in Paris?"},
            {"role": "assistant", "content": "Il est"},
        ],
        "max_tokens": 64,
        "stop": ["\n\n"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "user": "u-7",
        "stream": True,
    }


def test_a_system_string_is_one_system_message() -> None:
    body = chat_of(system="Be brief.", messages=[ASK])
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_images_become_image_parts_by_data_url_or_url() -> None:
    body = chat_of(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": PNG},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {"type": "text", "text": "Which is larger?"},
                ],
            }
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                {"type": "text", "text": "Which is larger?"},
            ],
        }
    ]


def test_documents_become_a_file_or_text() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}
    text = {"type": "text", "media_type": "text/plain", "data": "Grass is green."}
    body = chat_of(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": pdf, "title": "report.pdf"},
                    {"type": "document", "source": text, "title": "Facts"},
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
        },
        {"type": "text", "text": "Facts\n\nGrass is green."},
    ]


def test_a_tool_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    body = chat_of(
        tools=[NOW],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            ASK,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "A tool knows.", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_a", "name": "now", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_b", "name": "now", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_a", "content": "18:00"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_b",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "no city"},
                            {"type": "image", "source": PNG},
                        ],
                    },
                    {"type": "text", "text": "And in Tokyo?"},
                ],
            },
        ],
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "now",
                "parameters": NOW["input_schema"],
                "description": "The time in a city.",
            },
        }
    ]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "now", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "now", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18:00"},
        {
            "role": "tool",
            "tool_call_id": "call_b",
            "content": [{"type": "text", "text": "Error: "}, {"type": "text", "text": "no city"}],
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "And in Tokyo?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "chat_choice"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "now"}, {"type": "function", "function": {"name": "now"}}),
    ],
)
def test_tool_choice_maps_to_openais(choice: dict[str, Any], chat_choice: Any) -> None:
    body = chat_of(messages=[ASK], tools=[NOW], tool_choice=choice)
    assert body["tool_choice"] == chat_choice
    assert "parallel_tool_calls" not in body


def test_a_count_needs_no_output_limit_and_sends_only_the_prompt() -> None:
    counted = read(CountTokensRequest, {"model": "m", "messages": [ASK], "tools": [NOW]})
    assert set(chat_prompt(counted)) == {"model", "messages", "tools"}


def test_thinking_disabled_is_no_refusal() -> None:
    assert chat_of(messages=[ASK], thinking={"type": "disabled"})["messages"] == [
        {"role": "user", "content": ASK["content"]}
    ]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages.0.content.0.source",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": PNG | {"data": ""}}]}
                ]
            },
            "messages.0.content.0.source.data",
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
            "messages.0.content.0.source",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages.0.content.0"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi", "colour": 1}]}
                ]
            },
            "messages.0.content.0.colour",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "a", "name": "n", "input": {}}],
                    }
                ]
            },
            "messages.0.content.0",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "image", "source": PNG}]}]},
            "messages.0.content.0",
        ),
        ({"system": [{"type": "text"}]}, "system.0.text"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]},
            "tools.0.type",
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
