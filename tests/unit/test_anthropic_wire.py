"""Anthropic's Messages request as the OpenAI chat body the gateway meters: what each field and
block becomes."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway import chat_flow
from quartermaster.gateway.anthropic_request import CountTokensRequest, MessagesRequest, read
from quartermaster.gateway.anthropic_wire import ChatBody, chat_prompt, to_chat_body

ASK = {"role": "user", "content": "What time is it in Paris?"}
NOW = {
    "name": "now",
    "description": "The time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


ROUND_TRIP: dict[str, Any] = {
    "tools": [NOW],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "messages": [
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
}
"""A tool round trip: its chat messages 0–4 come from message 0, message 1, the two tool results
of message 2, and the rest of message 2 (the second result's image, then the user's text)."""


def chat_of(**fields: Any) -> dict[str, Any]:
    return translated(**fields).body


def translated(**fields: Any) -> ChatBody:
    return to_chat_body(read(MessagesRequest, {"model": "m", "max_tokens": 64, **fields}))


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
    body = chat_of(**ROUND_TRIP)
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
    assert set(chat_prompt(counted).body) == {"model", "messages", "tools"}


def test_thinking_disabled_asks_nothing_of_the_chat() -> None:
    assert chat_of(messages=[ASK], thinking={"type": "disabled"}) == chat_of(messages=[ASK])


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "n", "input": {}}]},
        {"role": "assistant", "content": [{"type": "image", "source": PNG}]},
    ],
)
def test_a_block_in_the_wrong_turn_is_refused_by_its_place(message: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        chat_of(messages=[message])
    assert caught.value.param == "messages[0].content[0]"
    assert "block cannot be in" in caught.value.message


@pytest.mark.parametrize(
    ("chat_param", "param"),
    [
        ("messages[0].content[0]", "system[0]"),
        ("messages[1].content", "messages[0]"),
        ("messages[2].tool_calls", "messages[1].content[2]"),
        ("messages[2].tool_calls[1].function.name", "messages[1].content[3]"),
        ("messages[4].role", "messages[2].content[1]"),
        ("messages[5].content[0]", "messages[2].content[1].content[1]"),
        ("messages.5.content.1.text", "messages[2].content[2]"),
        ("messages[9].content[0]", "messages[9].content[0]"),
        ("tools.0.type", "tools[0].type"),
        ("stop", "stop_sequences"),
        ("user", "metadata.user_id"),
        ("parallel_tool_calls", "tool_choice.disable_parallel_tool_use"),
        ("max_tokens", "max_tokens"),
    ],
)
def test_the_chats_refusals_name_the_callers_fields(chat_param: str, param: str) -> None:
    chat = translated(system=[{"type": "text", "text": "Be brief."}], **ROUND_TRIP)
    refusal = InvalidInput(f"m does not take this ({chat_param}); use another model", chat_param)
    renamed = chat.renamed(refusal)
    assert (renamed.param, renamed.message) == (
        param,
        f"m does not take this ({param}); use another model",
    )


def test_a_fifth_stop_sequence_is_refused_as_stop_sequences() -> None:
    chat = translated(messages=[ASK], stop_sequences=["a", "b", "c", "d", "e"])
    with pytest.raises(InvalidInput) as caught:
        chat_flow.read_body(chat.body)
    refusal = chat.renamed(caught.value)
    assert refusal.param == "stop_sequences"
    assert refusal.message == "stop_sequences: Value error, at most 4 stop sequences"
