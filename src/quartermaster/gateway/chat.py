"""POST /v1/chat/completions, whole or streamed as server-sent events, in OpenAI's format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import OperationalError
from starlette.background import BackgroundTask

from quartermaster.gateway.deps import MeteredCallerDep
from quartermaster.gateway.errors import from_provider
from quartermaster.gateway.schemas import ChatCompletionRequest
from quartermaster.http.deps import Ctx
from quartermaster.http.errors import database_unavailable
from quartermaster.http.providers import Providers
from quartermaster.providers.base import ChatChunk, ChatMessage, TokenUsage
from quartermaster.providers.errors import ProviderError
from quartermaster.services import metering
from quartermaster.services.datasets import retrieval

router = APIRouter(prefix="/v1", tags=["gateway"])


def _usage(usage: TokenUsage, tokens_charged: int | None) -> dict[str, int | None]:
    """OpenAI's usage object, plus `tokens_charged`: the platform tokens this call cost."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "tokens_charged": tokens_charged,
    }


def _call(body: ChatCompletionRequest) -> metering.ChatCall:
    messages = tuple(ChatMessage(m.role, m.text(), m.name) for m in body.messages)
    return metering.ChatCall(
        body.model,
        messages,
        body.output_limit(),
        body.temperature,
        body.stops(),
        body.persona,
        tuple(body.datasets or ()),
        body.sampling(),
    )


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, ctx: Ctx, caller: MeteredCallerDep, providers: Providers
) -> JSONResponse | StreamingResponse:
    """Metered chat. Refusals (quota, status, bad input) come before any token is generated."""
    chat = await metering.prepare_chat(ctx, providers, caller, _call(body))
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = metering.ChatStream(ctx, chat)
        return StreamingResponse(
            _events(chat, stream, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            background=BackgroundTask(stream.close),  # settles even if never iterated
        )
    answer = await metering.complete(ctx, chat)
    response = {
        "id": chat.request_id,
        "object": "chat.completion",
        "created": chat.created,
        "model": chat.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.result.content},
                "finish_reason": answer.result.finish_reason,
            }
        ],
        "usage": _usage(answer.usage, answer.tokens_charged),
    }
    # The answer goes out first; the request then ends once its charge is written.
    waited = BackgroundTask(asyncio.wait, [answer.booked])
    return JSONResponse(_with_references(chat, response), background=waited)


def _with_references(chat: metering.PreparedChat, payload: dict[str, Any]) -> dict[str, Any]:
    """Adds the retrieved sources (`datasets` extension) as a top-level `references` list."""
    if chat.references is None:
        return payload
    return payload | {"references": retrieval.references(chat.references)}


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _chunk(chat: metering.PreparedChat, chunk: ChatChunk, first: bool) -> dict[str, Any]:
    delta: dict[str, str] = {"role": "assistant"} if first else {}
    if chunk.delta:
        delta["content"] = chunk.delta
    return {
        "id": chat.request_id,
        "object": "chat.completion.chunk",
        "created": chat.created,
        "model": chat.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
    }


async def _events(
    chat: metering.PreparedChat, stream: metering.ChatStream, include_usage: bool
) -> AsyncIterator[str]:
    """SSE lines; an upstream failure mid-stream, or a hold the database cannot confirm before
    the first chunk, ends the stream with an error event."""
    first = True
    try:
        async for chunk in stream:
            payload = _chunk(chat, chunk, first)
            yield _sse(_with_references(chat, payload) if chunk.is_final else payload)
            first = False
            if chunk.is_final and include_usage and chunk.usage is not None:
                usage = {
                    **_chunk(chat, ChatChunk(), False),
                    "choices": [],
                    "usage": _usage(chunk.usage, stream.tokens_charged),
                }
                yield _sse(usage)
    except ProviderError as exc:
        yield _sse(json.loads(bytes(from_provider(exc).body)))
        return
    except OperationalError as exc:  # the ledger's database went away mid-stream: say so
        yield _sse(json.loads(bytes(database_unavailable(exc).body)))
        return
    yield "data: [DONE]\n\n"
