"""OpenAI's chat answers as Anthropic's: the message object, the named events of a stream, and
the usage and stop reason a client of Anthropic's reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from quartermaster.gateway.anthropic_events import from_chat_completion, sse, stream_events

CALL = {
    "id": "call_a",
    "type": "function",
    "function": {"name": "now", "arguments": '{"city":"Paris"}'},
}
USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 7,
    "total_tokens": 37,
    "prompt_tokens_details": {"cached_tokens": 20},
    "tokens_charged": 44,
}


def completion(message: dict[str, Any], finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {
        "id": "msg-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
            | choice
        ],
        "usage": USAGE,
    }


def test_a_text_answer_is_a_message_with_anthropics_usage() -> None:
    assert from_chat_completion(completion({"content": "Bonjour."})) == {
        "id": "msg-1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Bonjour."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_read_input_tokens": 20,
            "tokens_charged": 44,
        },
    }


def test_tool_calls_are_tool_use_blocks_with_their_input() -> None:
    message = from_chat_completion(
        completion(
            {"content": "Let me look.", "tool_calls": [CALL, {**CALL, "id": "call_b"}]},
            finish="tool_calls",
        )
    )
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_a", "name": "now", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "now", "input": {"city": "Paris"}},
    ]
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("arguments", "given"),
    [("", {}), ("not json", {"_raw_arguments": "not json"}), ("[1]", {"_raw_arguments": "[1]"})],
)
def test_arguments_that_are_no_object_are_kept_whole(arguments: str, given: Any) -> None:
    call = {**CALL, "function": {"name": "now", "arguments": arguments}}
    message = from_chat_completion(completion({"content": None, "tool_calls": [call]}))
    assert message["content"][0]["input"] == given


@pytest.mark.parametrize(
    ("finish", "extra", "reason", "sequence"),
    [
        ("length", {}, "max_tokens", None),
        ("content_filter", {}, "refusal", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
        ("stop", {"stop_reason": 2}, "end_turn", None),
    ],
)
def test_the_stop_reason_is_anthropics(
    finish: str, extra: dict[str, Any], reason: str, sequence: str | None
) -> None:
    message = from_chat_completion(completion({"content": "x"}, finish, **extra), ["END"])
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


def test_a_refusal_is_said_as_text() -> None:
    message = from_chat_completion(completion({"content": None, "refusal": "I can't."}))
    assert message["content"] == [{"type": "text", "text": "I can't."}]
    assert message["stop_reason"] == "refusal"


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def events_of(*chunks: dict[str, Any]) -> list[dict[str, Any]]:
    async def given() -> AsyncIterator[dict[str, Any]]:
        for each in chunks:
            yield each

    stream = stream_events(given(), message_id="msg-1", model="m", input_tokens=12)
    return [event async for event in stream]


async def test_a_streamed_text_is_one_block_between_start_and_stop() -> None:
    events = await events_of(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Bon"}),
        chunk({"content": "jour."}),
        chunk({}, "stop"),
        {"choices": [], "usage": USAGE},
    )
    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": "msg-1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 0},
            },
        },
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "jour."},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "input_tokens": 10,
                "output_tokens": 7,
                "cache_read_input_tokens": 20,
                "tokens_charged": 44,
            },
        },
        {"type": "message_stop"},
    ]


async def test_streamed_tool_calls_are_blocks_of_their_own_with_json_pieces() -> None:
    head = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "now"}}
    second = {"index": 1, "id": "call_b", "type": "function", "function": {"name": "now"}}
    events = await events_of(
        chunk({"content": "Looking."}),
        chunk({"tool_calls": [head | {"function": {"name": "now", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]}),
        chunk({"tool_calls": [second]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    blocks = [(e["type"], e.get("index")) for e in events if e["type"].startswith("content")]
    assert blocks == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
    ]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": "call_a", "name": "now", "input": {}}
    pieces = [e["delta"]["partial_json"] for e in events if e.get("index") == 1 and "delta" in e]
    assert json.loads("".join(pieces)) == {"city": "Paris"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_events_are_named() -> None:
    assert sse({"type": "ping"}) == 'event: ping\ndata: {"type":"ping"}\n\n'
