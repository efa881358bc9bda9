"""POST /v1/responses: OpenAI's Responses API, whole or streamed as named server-sent events,
answered through a chat on the path every route meters (gateway/chat_flow.py), so the same
checks, hold, cap and settlement apply. The request is read in the Responses API's terms first
(gateway/responses_wire.py) and its refusals name its fields, the chat's included. A model whose
upstream serves the Responses API itself (`responses = true`) gets the call as sent, checked and
held the same way (gateway/native_flow.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import OperationalError
from starlette.background import BackgroundTask

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.routes import Route
from quartermaster.gateway import chat_flow, native_flow
from quartermaster.gateway.chat import SSE_HEADERS, error_event
from quartermaster.gateway.deps import MeteredCallerDep
from quartermaster.gateway.responses_answer import Head, from_chat_completion, response_id
from quartermaster.gateway.responses_chat import to_chat_body
from quartermaster.gateway.responses_events import ResponseEvents, encode
from quartermaster.gateway.responses_wire import read_request
from quartermaster.http.deps import Ctx
from quartermaster.http.providers import Providers
from quartermaster.providers.base import NativeCall
from quartermaster.providers.errors import ProviderError
from quartermaster.providers.native import RESPONSES

router = APIRouter(prefix="/v1", tags=["gateway"])


@router.post("/responses", response_model=None)
async def create_response(
    raw: Annotated[dict[str, Any], Body()],
    ctx: Ctx,
    caller: MeteredCallerDep,
    providers: Providers,
) -> JSONResponse | StreamingResponse:
    """Metered like a chat; refusals come before any token is held or generated."""
    request = read_request(raw)
    chat_body = to_chat_body(request)
    try:
        chat = await chat_flow.open_chat(
            ctx,
            providers,
            caller,
            chat_body.body,
            id_prefix="resp",
            route=Route.RESPONSES,
            native=NativeCall(RESPONSES, raw),
        )
    except InvalidInput as refusal:
        raise chat_body.renamed(refusal) from None
    head = Head(response_id(chat.request_id), chat.created, chat.model)
    if native_flow.is_native(chat):
        return await native_flow.respond(
            ctx,
            chat,
            stream=bool(request.stream),
            answer_id=head.response_id,
            error_event=_native_error,
        )
    if request.stream:
        stream = chat_flow.ChunkStream(ctx, chat)
        return StreamingResponse(
            _sse(ResponseEvents(request, head), stream),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
            background=BackgroundTask(stream.close),  # settles even if never iterated
        )
    completion, booked = await chat_flow.whole(ctx, chat)
    answer = from_chat_completion(completion, request, head)
    return JSONResponse(answer, background=BackgroundTask(asyncio.wait, [booked]))


def _native_error(exc: ProviderError | OperationalError) -> dict[str, Any]:
    """The Responses API's `error` event for a forwarded stream that failed midway."""
    error = error_event(exc)["error"]
    return {
        "type": "error",
        "code": error.get("code"),
        "message": error["message"],
        "param": error.get("param"),
    }


async def _sse(events: ResponseEvents, stream: chat_flow.ChunkStream) -> AsyncIterator[str]:
    """The events; an upstream or database failure midway ends them with an `error` event,
    and no `response.completed`."""
    try:
        async for event in events.events(stream):
            yield encode(event)
    except (ProviderError, OperationalError) as exc:
        yield encode(events.error(error_event(exc)["error"]))
