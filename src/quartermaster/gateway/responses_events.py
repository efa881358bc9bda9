"""A streamed chat (`chat.completion.chunk` objects, the last one carrying the usage) as the
Responses API's stream events, each numbered by `sequence_number`:

    response.created, response.in_progress
    for each output item, in order:
      response.output_item.added
        a message: per part, response.content_part.added, its deltas
          (response.output_text.delta or response.refusal.delta), their .done,
          response.content_part.done
        a function call: response.function_call_arguments.delta…, its .done
      response.output_item.done
    response.completed (or response.incomplete), carrying the whole response and its usage

A message closes when a function call starts; function calls stay open until the chat's finish
reason, so calls streamed interleaved still arrive whole. An upstream failing midway ends the
stream with an `error` event instead of the last one (`error`, by the route).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from quartermaster.gateway.responses_answer import (
    Head,
    function_call_item,
    message_item,
    new_item_id,
    outcome,
    refusal_part,
    response_object,
    text_part,
)
from quartermaster.gateway.responses_wire import ResponsesRequest

Event = tuple[str, dict[str, Any]]
"""An event's type and its data (which repeats the type, as OpenAI sends it)."""

PARTS = {"content": "output_text", "refusal": "refusal"}
"""A chat delta's field → the kind of message part it streams into."""


def encode(event: Event) -> str:
    """One server-sent event, named by its type."""
    kind, data = event
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class _Part:
    kind: str
    pieces: list[str] = field(default_factory=list)

    def done(self) -> dict[str, Any]:
        text = "".join(self.pieces)
        return text_part(text) if self.kind == "output_text" else refusal_part(text)


@dataclass
class _Message:
    item_id: str
    output_index: int
    parts: list[_Part] = field(default_factory=list)


@dataclass
class _Call:
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ResponseEvents:
    """The events of one response; `events` once, then `error` if the chunks failed."""

    def __init__(self, request: ResponsesRequest, head: Head) -> None:
        self._request, self._head = request, head
        self._sequence = 0
        self._output: list[dict[str, Any] | None] = []
        """Each item once done, by output index (None while open)."""
        self._message: _Message | None = None
        self._calls: dict[int, _Call] = {}
        """The open function calls, by the chat's tool call index."""
        self._finish_reason: str | None = None
        self._usage: Mapping[str, Any] | None = None

    async def events(self, chunks: AsyncIterable[Mapping[str, Any]]) -> AsyncIterator[Event]:
        for kind in ("response.created", "response.in_progress"):
            yield self._event(kind, response=response_object(self._request, self._head))
        async for chunk in chunks:
            self._usage = chunk.get("usage") or self._usage
            for choice in chunk.get("choices") or ():
                for event in self._choice(choice):
                    yield event
        for event in self._close():
            yield event
        finish_reason = self._finish_reason or "stop"
        output = [item for item in self._output if item is not None]
        final = response_object(self._request, self._head, output, self._usage, finish_reason)
        yield self._event(f"response.{final['status']}", response=final)

    def error(self, error: Mapping[str, Any]) -> Event:
        """The event that ends a stream whose upstream failed (`error`: OpenAI's error object)."""
        return self._event(
            "error", code=error.get("code"), message=error["message"], param=error.get("param")
        )

    def _event(self, kind: str, **data: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self._sequence, **data})
        self._sequence += 1
        return event

    def _choice(self, choice: Mapping[str, Any]) -> Iterator[Event]:
        delta = choice.get("delta") or {}
        for name, kind in PARTS.items():
            if delta.get(name):
                yield from self._text(kind, delta[name])
        for call in delta.get("tool_calls") or ():
            yield from self._call(call)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            yield from self._close()

    def _text(self, kind: str, piece: str) -> Iterator[Event]:
        """A piece of the message's text or refusal (opening the message, or a part of another
        kind, first); an empty piece only opens them."""
        message = self._message
        if message is None:
            message = self._message = _Message(new_item_id("msg"), self._add())
            item = message_item(message.item_id, [], "in_progress")
            yield self._event(
                "response.output_item.added", output_index=message.output_index, item=item
            )
        if not message.parts or message.parts[-1].kind != kind:
            if message.parts:
                yield from self._part_done(message)
            message.parts.append(_Part(kind))
            yield self._event(
                "response.content_part.added", **_at(message), part=_Part(kind).done()
            )
        if piece:
            message.parts[-1].pieces.append(piece)
            logprobs: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
            yield self._event(f"response.{kind}.delta", **_at(message), delta=piece, **logprobs)

    def _part_done(self, message: _Message) -> Iterator[Event]:
        done = message.parts[-1].done()
        if done["type"] == "output_text":
            yield self._event(
                "response.output_text.done", **_at(message), text=done["text"], logprobs=[]
            )
        else:
            yield self._event("response.refusal.done", **_at(message), refusal=done["refusal"])
        yield self._event("response.content_part.done", **_at(message), part=done)

    def _call(self, delta: Mapping[str, Any]) -> Iterator[Event]:
        function = delta.get("function") or {}
        index = delta.get("index", 0)
        call = self._calls.get(index)
        if call is None:
            yield from self._close_message("completed")  # the model's text came before
            call_id, name = delta.get("id") or "", function.get("name") or ""
            call = self._calls[index] = _Call(new_item_id("fc"), self._add(), call_id, name)
            item = function_call_item(call.item_id, call.call_id, call.name, "", "in_progress")
            yield self._event(
                "response.output_item.added", output_index=call.output_index, item=item
            )
        elif function.get("name"):
            call.name += function["name"]
        if function.get("arguments"):
            call.arguments.append(function["arguments"])
            yield self._event(
                "response.function_call_arguments.delta",
                item_id=call.item_id,
                output_index=call.output_index,
                delta=function["arguments"],
            )

    def _add(self) -> int:
        """A new output item's index."""
        self._output.append(None)
        return len(self._output) - 1

    def _close(self) -> Iterator[Event]:
        """Every open item done, with the status the finish reason gives; an answer with no
        item at all is an empty message (as a whole answer's is)."""
        status = "incomplete" if outcome(self._finish_reason)[1] else "completed"
        if not self._output:
            yield from self._text("output_text", "")
        yield from self._close_message(status)
        for call in self._calls.values():
            arguments = "".join(call.arguments)
            where = {"item_id": call.item_id, "output_index": call.output_index}
            yield self._event("response.function_call_arguments.done", **where, arguments=arguments)
            item = function_call_item(call.item_id, call.call_id, call.name, arguments, status)
            yield from self._item_done(call.output_index, item)
        self._calls.clear()

    def _close_message(self, status: str) -> Iterator[Event]:
        message = self._message
        if message is None:
            return
        yield from self._part_done(message)
        item = message_item(message.item_id, [part.done() for part in message.parts], status)
        self._message = None
        yield from self._item_done(message.output_index, item)

    def _item_done(self, output_index: int, item: dict[str, Any]) -> Iterator[Event]:
        self._output[output_index] = item
        yield self._event("response.output_item.done", output_index=output_index, item=item)


def _at(message: _Message) -> dict[str, Any]:
    """Where a message part's event points: the item, and the part being written."""
    return {
        "item_id": message.item_id,
        "output_index": message.output_index,
        "content_index": len(message.parts) - 1,
    }
