"""OpenAI's chat answers as Anthropic's: a `chat.completion` becomes a `message`, a stream of
`chat.completion.chunk` objects becomes Anthropic's named events — `message_start`, a `ping`,
`content_block_start`/`_delta`/`_stop` for each text run and tool call, `message_delta` with the
stop reason and the final usage, `message_stop`.

Usage as Anthropic counts it: `input_tokens` are the prompt tokens not read from the upstream's
cache, which are `cache_read_input_tokens`; `output_tokens` the answer's. `tokens_charged` (ours)
is what the call cost in platform tokens. A stop sequence is named when the upstream said which
one it met (vLLM's `stop_reason`); OpenAI's own `stop` does not say, so it is `end_turn`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def from_chat_completion(
    completion: Mapping[str, Any], stop_sequences: Sequence[str] = ()
) -> dict[str, Any]:
    """The `message` object of a `chat.completion` (its first and only choice)."""
    choice = completion["choices"][0]
    said = choice.get("message") or {}
    text = said.get("refusal") or said.get("content")
    content = [{"type": "text", "text": text}] if text else []
    for call in said.get("tool_calls") or ():
        content.append(_tool_use(call) | {"input": _arguments(call["function"]["arguments"])})
    reason, sequence = _stop(choice, stop_sequences, refused=bool(said.get("refusal")))
    head = _message(completion["id"], completion["model"], usage(completion.get("usage")))
    return head | {"content": content, "stop_reason": reason, "stop_sequence": sequence}


def usage(reported: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI's usage (with our `tokens_charged`) as Anthropic's."""
    reported = reported or {}
    cached = (reported.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": (reported.get("prompt_tokens") or 0) - cached,
        "output_tokens": reported.get("completion_tokens") or 0,
        "cache_read_input_tokens": cached,
        "tokens_charged": reported.get("tokens_charged"),
    }


async def stream_events(
    chunks: AsyncIterable[Mapping[str, Any]],
    *,
    message_id: str,
    model: str,
    input_tokens: int,
    stop_sequences: Sequence[str] = (),
) -> AsyncIterator[dict[str, Any]]:
    """Anthropic's events for a stream of chunks whose last one carries the usage. The start
    says the prompt as counted for the hold; `message_delta` says what the upstream billed."""
    start = _message(message_id, model, {"input_tokens": input_tokens, "output_tokens": 0})
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    blocks = _Blocks()
    ending: Mapping[str, Any] = {}
    billed: Mapping[str, Any] | None = None
    async for chunk in chunks:
        for choice in chunk.get("choices") or ():
            for event in blocks.take(choice.get("delta") or {}):
                yield event
            if choice.get("finish_reason"):
                ending = choice
        billed = chunk.get("usage") or billed
    for event in blocks.close():
        yield event
    reason, sequence = _stop(ending, stop_sequences, refused=blocks.refused)
    delta = {"stop_reason": reason, "stop_sequence": sequence}
    yield {"type": "message_delta", "delta": delta, "usage": usage(billed)}
    yield {"type": "message_stop"}


def sse(event: Mapping[str, Any]) -> str:
    """One server-sent event named by its type, as Anthropic sends them (and OpenAI's
    Responses API)."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


class _Blocks:
    """The content blocks of a streamed answer: a run of text, or one tool call, each opened
    when its first piece arrives and closed when the next one opens or the answer ends."""

    def __init__(self) -> None:
        self._count = 0
        self._open: object = None
        """What the open block holds: "text", a tool call's index, or None (none open)."""
        self.refused = False

    def take(self, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        text = delta.get("content") or delta.get("refusal")
        self.refused = self.refused or bool(delta.get("refusal"))
        if text:
            if self._open != "text":
                events += self._start("text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            if self._open != ("tool", call.get("index", 0)):
                events += self._start(("tool", call.get("index", 0)), _tool_use(call))
            arguments = (call.get("function") or {}).get("arguments")
            if arguments:
                events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._count - 1}]

    def _start(self, holds: object, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.close()
        events.append({"type": "content_block_start", "index": self._count, "content_block": block})
        self._open = holds
        self._count += 1
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._count - 1, "delta": delta}


def _message(message_id: str, model: str, counted: dict[str, Any]) -> dict[str, Any]:
    """A message with no content yet, as a stream starts."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": counted,
    }


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call's block, its input still empty (a stream sends it in pieces)."""
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": function.get("name") or "",
        "input": {},
    }


def _arguments(text: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's `input` is; a model's text that is not
    one is kept whole, under `_raw_arguments`, rather than lost."""
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": text}


def _stop(
    choice: Mapping[str, Any], stop_sequences: Sequence[str], *, refused: bool
) -> tuple[str, str | None]:
    met = choice.get("stop_reason")  # vLLM names the stop string it met
    if isinstance(met, str) and met in stop_sequences:
        return "stop_sequence", met
    if refused:
        return "refusal", None
    return STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"), None
