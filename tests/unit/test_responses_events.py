"""A streamed chat as the Responses API's stream events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from quartermaster.gateway.responses_answer import Head
from quartermaster.gateway.responses_events import Event, ResponseEvents, encode
from quartermaster.gateway.responses_wire import read_request

HEAD = Head("resp_1", 1_700_000_000, "m")
REQUEST = read_request({"model": "m", "input": "Hi", "stream": True})
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12, "tokens_charged": 12}


def piece(**delta: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def finish(reason: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


def tool_piece(index: int, **call: Any) -> dict[str, Any]:
    return piece(tool_calls=[{"index": index, **call}])


async def events_of(*chunks: dict[str, Any]) -> list[Event]:
    async def stream() -> AsyncIterator[dict[str, Any]]:
        for chunk in chunks:
            yield chunk

    return [event async for event in ResponseEvents(REQUEST, HEAD).events(stream())]


TEXT = [
    piece(role="assistant", content=""),
    piece(content="Hel"),
    piece(content="lo"),
    finish("stop"),
    {"choices": [], "usage": USAGE},
]


async def test_text_streams_in_openais_order_and_ends_with_one_completed_with_usage() -> None:
    events = await events_of(*TEXT)
    assert [kind for kind, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(data["type"] == kind for kind, data in events)
    assert events[0][1]["response"]["status"] == "in_progress"
    assert events[0][1]["response"]["usage"] is None
    delta = events[4][1]
    item_id = events[2][1]["item"]["id"]
    assert delta == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    }
    assert events[6][1]["text"] == "Hello"
    final = events[-1][1]["response"]
    assert final["status"] == "completed"
    assert final["usage"]["tokens_charged"] == 12
    assert final["output"] == [events[8][1]["item"]]
    assert final["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": []}
    ]


async def test_function_calls_stream_their_arguments_and_arrive_whole() -> None:
    events = await events_of(
        piece(role="assistant", content="Checking."),
        tool_piece(0, id="call_a", type="function", function={"name": "now", "arguments": '{"ci'}),
        tool_piece(1, id="call_b", type="function", function={"name": "now", "arguments": ""}),
        tool_piece(0, function={"arguments": 'ty":"Paris"}'}),
        tool_piece(1, function={"arguments": '{"city":"Tokyo"}'}),
        finish("tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    kinds = [kind for kind, _ in events]
    message_done = kinds.index("response.output_item.done")
    assert message_done < kinds.index("response.function_call_arguments.delta")
    arguments = {
        data["output_index"]: data["arguments"]
        for kind, data in events
        if kind == "response.function_call_arguments.done"
    }
    assert arguments == {1: '{"city":"Paris"}', 2: '{"city":"Tokyo"}'}
    final = events[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert [item.get("call_id") for item in final["output"][1:]] == ["call_a", "call_b"]
    assert (
        kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 3
    )


async def test_a_refusal_streams_as_a_refusal_part() -> None:
    events = await events_of(
        piece(refusal="I can't."), finish("stop"), {"choices": [], "usage": USAGE}
    )
    kinds = [kind for kind, _ in events]
    assert "response.refusal.delta" in kinds
    assert "response.refusal.done" in kinds
    final = events[-1][1]["response"]
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't."}]


async def test_an_answer_cut_at_the_output_limit_ends_incomplete() -> None:
    events = await events_of(
        piece(content="It is"), finish("length"), {"choices": [], "usage": USAGE}
    )
    kind, data = events[-1]
    assert kind == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["output"][0]["status"] == "incomplete"
    assert "response.completed" not in [kind for kind, _ in events]


async def test_an_empty_answer_is_still_a_message() -> None:
    events = await events_of(finish("stop"), {"choices": [], "usage": USAGE})
    final = events[-1][1]["response"]
    assert final["output"][0]["content"] == [{"type": "output_text", "text": "", "annotations": []}]


async def test_a_failing_stream_ends_with_an_error_numbered_after_the_rest() -> None:
    async def failing() -> AsyncIterator[dict[str, Any]]:
        yield piece(content="Hel")
        raise ConnectionError("the upstream went away")

    stream, started = ResponseEvents(REQUEST, HEAD), []

    async def read() -> None:
        async for event in stream.events(failing()):
            started.append(event)

    with pytest.raises(ConnectionError):
        await read()
    assert [kind for kind, _ in started][-1] == "response.output_text.delta"
    error = {"message": "the upstream failed", "type": "api_error", "param": None, "code": "x"}
    assert stream.error(error) == (
        "error",
        {
            "type": "error",
            "sequence_number": len(started),
            "code": "x",
            "message": "the upstream failed",
            "param": None,
        },
    )


def test_an_event_is_named_on_the_wire() -> None:
    encoded = encode(
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi"})
    )
    name, data, end = encoded.split("\n", 2)
    assert name == "event: response.output_text.delta"
    assert json.loads(data.removeprefix("data: "))["delta"] == "Hi"
    assert end == "\n"
