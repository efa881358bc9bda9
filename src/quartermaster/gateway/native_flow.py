"""A call forwarded in its own dialect to an upstream that speaks it (providers/native.py): the
upstream's answer, or its named events, go back as they came, with the gateway's id and model
name in the envelope (a `response`, a `message`) and `tokens_charged` added to the usage, as
chat_flow.py does for chat completions. The hold and the settlement are the same as for every
other call (services/metering.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import OperationalError
from starlette.background import BackgroundTask

from quartermaster.gateway.anthropic_events import sse
from quartermaster.gateway.chat import SSE_HEADERS
from quartermaster.providers.errors import ProviderError
from quartermaster.providers.native import MESSAGE_STOP, RESPONSES
from quartermaster.services import metering
from quartermaster.services.context import Context

ENVELOPES = {RESPONSES: "response", "messages": "message"}
"""Where a dialect's stream events carry the object the answer is (id, model, usage)."""

ErrorEvent = Callable[[ProviderError | OperationalError], Mapping[str, Any]]
"""The route's own `error` event for a failure midway."""


def is_native(chat: metering.PreparedChat) -> bool:
    """Whether the prepared call goes to its upstream in its own dialect."""
    return chat.request.native is not None


async def respond(
    ctx: Context,
    chat: metering.PreparedChat,
    *,
    stream: bool,
    answer_id: str,
    error_event: ErrorEvent,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse | StreamingResponse:
    """The answer whole, or streamed as named server-sent events; settled either way."""
    named = _Namer(chat, answer_id)
    if stream:
        metered = metering.ChatStream(ctx, chat)
        return StreamingResponse(
            _sse(named, metered, error_event),
            media_type="text/event-stream",
            headers=SSE_HEADERS | dict(headers or {}),
            background=BackgroundTask(metered.close),  # settles even if never iterated
        )
    answer = await metering.complete(ctx, chat)
    payload = named.charged(dict(answer.result.raw or {}), answer.tokens_charged)
    # The answer goes out first; the request then ends once its charge is written.
    return JSONResponse(
        payload, headers=headers, background=BackgroundTask(asyncio.wait, [answer.booked])
    )


class _Namer:
    """Puts the gateway's id and model name, and the charge, on the upstream's objects."""

    def __init__(self, chat: metering.PreparedChat, answer_id: str) -> None:
        native = chat.request.native
        assert native is not None, "a chat sent as a chat has its own flow (chat_flow.py)"
        self.dialect = native.dialect
        self._names = {"id": answer_id, "model": chat.model}
        self._sequence = -1

    def named(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A stream event, its envelope (if it has one) under our names."""
        if isinstance(event.get("sequence_number"), int):
            self._sequence = event["sequence_number"]
        key = ENVELOPES[self.dialect]
        inner = event.get(key)
        if isinstance(inner, Mapping):
            return {**event, key: {**inner, **self._names}}
        return dict(event)

    def charged(self, answer: Mapping[str, Any], tokens_charged: int | None) -> dict[str, Any]:
        """A whole answer under our names, with the charge in its usage."""
        return {**answer, **self._names, "usage": _charged(answer.get("usage"), tokens_charged)}

    def terminal(self, event: Mapping[str, Any], tokens_charged: int | None) -> dict[str, Any]:
        """The stream's last event (a response's `response.completed`, a message's
        `message_delta`), with the charge in the usage it carries."""
        if self.dialect == RESPONSES:
            response = event.get("response") or {}
            return {**event, "response": self.charged(response, tokens_charged)}
        return {**event, "usage": _charged(event.get("usage"), tokens_charged)}

    def last(self, error: Mapping[str, Any]) -> dict[str, Any]:
        """The `error` event that ends a failed stream, numbered after the upstream's events
        when they are numbered (the Responses API's `sequence_number`)."""
        if self.dialect != RESPONSES:
            return dict(error)
        return {**error, "sequence_number": self._sequence + 1}


def _charged(usage: Any, tokens_charged: int | None) -> dict[str, Any]:
    """The upstream's usage object with the gateway's charge beside it."""
    reported: Mapping[str, Any] = usage if isinstance(usage, Mapping) else {}
    return {**reported, "tokens_charged": tokens_charged}


async def _sse(
    named: _Namer, metered: metering.ChatStream, error_event: ErrorEvent
) -> AsyncIterator[str]:
    """The upstream's events as they came; a failure midway ends them with the route's `error`
    event (and no terminal event)."""
    try:
        async for chunk in metered:
            if not chunk.is_final:
                yield sse(named.named(chunk.raw or {}))
                continue
            yield sse(named.terminal(chunk.raw or {}, metered.tokens_charged))
            if named.dialect != RESPONSES:
                yield sse({"type": MESSAGE_STOP})
    except (ProviderError, OperationalError) as exc:
        yield sse(named.last(error_event(exc)))
