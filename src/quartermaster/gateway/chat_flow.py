"""A metered chat from an OpenAI chat body to OpenAI's answer objects, for every route that
chats: /v1/chat/completions sends them as they are, /v1/responses and /v1/messages translate
them, and /v1/completions (a prompt continued, not a chat) gets OpenAI's `text_completion`
objects. One path, so every route has the same checks, hold, settlement and release.

An HTTP upstream's answer reaches the caller as it came (tool calls, several choices, logprobs,
refusals), with our request id and model name, and its usage with `tokens_charged` added. The
embedded model's answer is built here in the same shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.routes import Route
from quartermaster.gateway.schemas import EXTENSIONS, ChatCompletionRequest
from quartermaster.providers.base import ChatChunk, NativeCall, TokenUsage
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import metering
from quartermaster.services.context import Context
from quartermaster.services.datasets import retrieval

NOT_FORWARDED = frozenset({"model", "stream", *EXTENSIONS})
"""What the gateway sets or consumes itself; every other field goes to the upstream as sent."""


def read_body(raw: Mapping[str, Any]) -> ChatCompletionRequest:
    """A chat body from another route's translation, checked like a caller's (400 naming the
    field of the chat body: a translation that produced a bad one names what it came from)."""
    try:
        return ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput(f"{where}: {first['msg']}", param=where) from None


def call_of(
    body: ChatCompletionRequest, raw: Mapping[str, Any], id_prefix: str
) -> metering.ChatCall:
    """The chat as metering reads it; `raw` is the body as the caller sent it."""
    forwarded = {name: value for name, value in raw.items() if name not in NOT_FORWARDED}
    return metering.ChatCall(
        body.model,
        forwarded,
        body.output_limit(),
        body.temperature,
        body.stops(),
        body.persona,
        tuple(body.datasets or ()),
        body.sampling(),
        body.asks(),
        id_prefix,
    )


async def open_chat(
    ctx: Context,
    providers: ProviderRegistry,
    caller: metering.MeteredCaller,
    raw: Mapping[str, Any],
    *,
    id_prefix: str = "chatcmpl",
    parsed: ChatCompletionRequest | None = None,
    route: Route = Route.CHAT,
    native: NativeCall | None = None,
) -> metering.PreparedChat:
    """Checks a chat body (unless the route `parsed` it already), the model's capabilities and
    the caller's cap, and holds the worst case, booked by `route`; raises (nothing held, nothing
    sent) when the call cannot go. `native`: the call in its route's own dialect, sent as such
    when the model's upstream speaks it (the chat body still bounds the hold)."""
    call = replace(call_of(parsed or read_body(raw), raw, id_prefix), native=native)
    return await metering.prepare_chat(ctx, providers, caller, call, route=route)


def usage_payload(usage: TokenUsage, reported: Any, charged: int | None) -> dict[str, Any]:
    """The upstream's usage object as it came (details included), or ours when it gave none,
    with `tokens_charged`: the platform tokens this call cost."""
    counted = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    given = reported if isinstance(reported, Mapping) and reported else counted
    return {**given, "tokens_charged": charged}


async def whole(
    ctx: Context, chat: metering.PreparedChat
) -> tuple[dict[str, Any], metering.Booking]:
    """The `chat.completion` object, and the booking of its charge (under way)."""
    answer = await metering.complete(ctx, chat)
    result = answer.result
    reported = result.raw.get("usage") if result.raw is not None else None
    usage = usage_payload(answer.usage, reported, answer.tokens_charged)
    if result.raw is not None:
        payload = {**result.raw, "id": chat.request_id, "model": chat.model, "usage": usage}
    elif chat.request.prompts:
        choice = _text_choice(result.content, result.finish_reason)
        payload = _head(chat, "text_completion") | {"choices": [choice], "usage": usage}
    else:
        message = {"role": "assistant", "content": result.content}
        choice = {"index": 0, "message": message, "finish_reason": result.finish_reason}
        payload = _head(chat, "chat.completion") | {"choices": [choice], "usage": usage}
    return with_references(chat, payload), answer.booked


def with_references(chat: metering.PreparedChat, payload: dict[str, Any]) -> dict[str, Any]:
    """Adds the retrieved sources (`datasets` extension) as a top-level `references` list."""
    if chat.references is None:
        return payload
    return payload | {"references": retrieval.references(chat.references)}


def _head(chat: metering.PreparedChat, kind: str) -> dict[str, Any]:
    return {"id": chat.request_id, "object": kind, "created": chat.created, "model": chat.model}


def _text_choice(text: str, finish: str | None) -> dict[str, Any]:
    """The embedded model's completion, or a streamed piece of it: text, whole or in part."""
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


class ChunkStream:
    """The answer as `chat.completion.chunk` objects (a completion's as `text_completion`): the
    upstream's events as they came (or the embedded model's pieces), then always one usage chunk
    (`choices: []`) carrying the usage and `tokens_charged`. `close()` settles, also when the
    stream was never read."""

    def __init__(self, ctx: Context, chat: metering.PreparedChat) -> None:
        self._chat = chat
        self._stream = metering.ChatStream(ctx, chat)
        self._kind = "text_completion" if chat.request.prompts else "chat.completion.chunk"

    async def close(self) -> None:
        await self._stream.close()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        chat, first, forwarded = self._chat, True, False
        uncited = chat.references is not None
        async for chunk in self._stream:
            if chunk.is_final:
                if not forwarded:
                    yield with_references(chat, self._piece(chunk, first))
                yield self._usage(chunk)
                return
            if chunk.raw is None:
                yield self._piece(chunk, first)
            else:
                forwarded = True
                event = {**chunk.raw, "id": chat.request_id, "model": chat.model}
                event.pop("usage", None)  # one usage chunk, ours, ends the stream
                if uncited and any(c.get("finish_reason") for c in event.get("choices") or ()):
                    event, uncited = with_references(chat, event), False
                yield event
            first = False

    def _usage(self, final: ChatChunk) -> dict[str, Any]:
        reported = final.raw.get("usage") if final.raw is not None else None
        usage = final.usage or TokenUsage(0)
        payload = usage_payload(usage, reported, self._stream.tokens_charged)
        return _head(self._chat, self._kind) | {"choices": [], "usage": payload}

    def _piece(self, chunk: ChatChunk, first: bool) -> dict[str, Any]:
        if self._chat.request.prompts:
            choice = _text_choice(chunk.delta, chunk.finish_reason)
        else:
            delta: dict[str, str] = {"role": "assistant"} if first else {}
            if chunk.delta:
                delta["content"] = chunk.delta
            choice = {"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}
        return _head(self._chat, self._kind) | {"choices": [choice]}
