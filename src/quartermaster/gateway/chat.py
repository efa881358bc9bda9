"""POST /v1/chat/completions, whole or streamed as server-sent events, in OpenAI's format: the
body is forwarded as sent and the answer returned as it came (gateway/chat_flow.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import OperationalError
from starlette.background import BackgroundTask

from quartermaster.gateway import chat_flow
from quartermaster.gateway.deps import MeteredCallerDep
from quartermaster.gateway.errors import from_provider
from quartermaster.gateway.schemas import ChatCompletionRequest, Generation
from quartermaster.http.deps import Ctx
from quartermaster.http.errors import database_unavailable
from quartermaster.http.providers import Providers
from quartermaster.providers.errors import ProviderError
from quartermaster.services import metering
from quartermaster.services.context import Context

router = APIRouter(prefix="/v1", tags=["gateway"])
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    ctx: Ctx,
    caller: MeteredCallerDep,
    providers: Providers,
) -> JSONResponse | StreamingResponse:
    """Metered chat. Refusals (quota, status, bad input, what the model cannot do) come before
    any token is held or generated."""
    raw = await request.json()
    chat = await chat_flow.open_chat(ctx, providers, caller, raw, parsed=body)
    return await respond(ctx, chat, body)


async def respond(
    ctx: Context, chat: metering.PreparedChat, body: Generation
) -> JSONResponse | StreamingResponse:
    """The held call answered whole, or streamed as server-sent events, as `body` asked."""
    if body.stream:
        stream = chat_flow.ChunkStream(ctx, chat)
        return StreamingResponse(
            _events(stream, body.include_usage()),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
            background=BackgroundTask(stream.close),  # settles even if never iterated
        )
    payload, booked = await chat_flow.whole(ctx, chat)
    # The answer goes out first; the request then ends once its charge is written.
    return JSONResponse(payload, background=BackgroundTask(asyncio.wait, [booked]))


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def error_event(exc: ProviderError | OperationalError) -> dict[str, Any]:
    """The error object that ends a stream: the upstream failed mid-answer, or the ledger's
    database could not confirm the hold before the first chunk."""
    response = from_provider(exc) if isinstance(exc, ProviderError) else database_unavailable(exc)
    error: dict[str, Any] = json.loads(bytes(response.body))
    return error


async def _events(stream: chat_flow.ChunkStream, include_usage: bool) -> AsyncIterator[str]:
    """SSE lines; the usage chunk only when the caller asked for it (`stream_options`)."""
    try:
        async for chunk in stream:
            if chunk["choices"] or include_usage:
                yield sse(chunk)
    except (ProviderError, OperationalError) as exc:
        yield sse(error_event(exc))
        return
    yield "data: [DONE]\n\n"
