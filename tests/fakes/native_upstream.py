"""A fake upstream that speaks OpenAI's Responses API and Anthropic's Messages API natively,
served in-process through `httpx.MockTransport`: a canned answer whole, or streamed with each
dialect's named events, and a usage the test chooses. It records what arrived (path, headers,
body) and can end a stream midway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

WORDS = ["It", " is", " noon."]


@dataclass
class NativeUpstream:
    response_usage: dict[str, Any] = field(
        default_factory=lambda: {
            "input_tokens": 40,
            "input_tokens_details": {"cached_tokens": 8},
            "output_tokens": 24,
            "output_tokens_details": {"reasoning_tokens": 6},
            "total_tokens": 64,
        }
    )
    message_usage: dict[str, Any] = field(
        default_factory=lambda: {
            "input_tokens": 30,
            "cache_creation_input_tokens": 4,
            "cache_read_input_tokens": 10,
            "output_tokens": 20,
        }
    )
    cut_after: int | None = None
    """End a stream after this many events, before its last."""
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        responses = request.url.path.endswith("/responses")
        if not (responses or request.url.path.endswith("/messages")):
            return httpx.Response(404, json={"error": {"message": "not a native path"}})
        whole = self.response(body) if responses else self.message(body)
        if not body.get("stream"):
            return httpx.Response(200, json=whole)
        events = list(_response_events(whole) if responses else _message_events(whole))
        if self.cut_after is not None:
            events = events[: self.cut_after]
        content = b"".join(_sse(event) for event in events)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)

    def response(self, body: dict[str, Any]) -> dict[str, Any]:
        text = {"type": "output_text", "text": "".join(WORDS), "annotations": []}
        message = {
            "type": "message",
            "id": "msg_up",
            "role": "assistant",
            "status": "completed",
            "content": [text],
        }
        call = {
            "type": "function_call",
            "id": "fc_up",
            "call_id": "call_up",
            "name": "now",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        }
        return {
            "id": "resp_upstream",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": "completed",
            "model": body["model"],
            "output": [message, call],
            "usage": self.response_usage,
            "store": body.get("store"),
        }

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "msg_upstream",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [
                {"type": "text", "text": "".join(WORDS)},
                {"type": "tool_use", "id": "toolu_up", "name": "now", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": self.message_usage,
        }


def _response_events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """As OpenAI streams a response: created, the text word by word, the call, completed."""
    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    message, call = response["output"]
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        *(
            {"type": "response.output_text.delta", "item_id": "msg_up", "delta": word}
            for word in WORDS
        ),
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {"type": "response.function_call_arguments.delta", "delta": call["arguments"]},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.completed", "response": response},
    ]
    for number, event in enumerate(events):
        yield event | {"sequence_number": number}


def _message_events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """As Anthropic streams a message: the prompt's usage first, the output's in message_delta."""
    usage = message["usage"]
    opening = {**message, "content": [], "stop_reason": None, "usage": usage | {"output_tokens": 1}}
    yield {"type": "message_start", "message": opening}
    yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield {"type": "ping"}
    for word in WORDS:
        delta = {"type": "text_delta", "text": word}
        yield {"type": "content_block_delta", "index": 0, "delta": delta}
    yield {"type": "content_block_stop", "index": 0}
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    output = {"output_tokens": usage["output_tokens"]}
    yield {"type": "message_delta", "delta": stop, "usage": output}
    yield {"type": "message_stop"}


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
