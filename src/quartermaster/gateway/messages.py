"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, so that its SDKs
and Claude Code reach the gateway's models, metered against the same caps.

A call is read as Anthropic defines it (anthropic_request.py) and translated into an OpenAI chat
body (anthropic_wire.py), which takes the path every chat takes (chat_flow.py: the same checks,
hold, settlement and release); the chat's refusals name the caller's fields, and the answer is
translated back (anthropic_events.py), errors too (anthropic_errors.py). The key comes as
`x-api-key` or as a bearer token; the `anthropic-version` and `anthropic-beta` headers are
accepted, whatever their value, and not read: what the gateway does not take is refused by its
field. A model behind an Anthropic upstream (`kind = "anthropic"`) gets the call as sent, with
those two headers, checked and held the same way (gateway/native_flow.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.background import BackgroundTask

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.routes import Route
from quartermaster.gateway import (
    anthropic_errors,
    anthropic_events,
    anthropic_request,
    anthropic_wire,
    chat_flow,
    native_flow,
)
from quartermaster.gateway.chat import SSE_HEADERS
from quartermaster.gateway.deps import ApiKeyCallerDep
from quartermaster.gateway.errors import from_provider
from quartermaster.http.deps import Ctx
from quartermaster.http.errors import database_unavailable
from quartermaster.http.providers import Providers
from quartermaster.providers.base import NativeCall
from quartermaster.providers.errors import ProviderError
from quartermaster.providers.native import MESSAGES
from quartermaster.services import prompt_tokens

router = APIRouter(prefix="/v1", tags=["gateway"])
DIALECT_HEADERS = ("anthropic-version", "anthropic-beta")
"""The caller's headers an Anthropic upstream gets with a forwarded call."""
Raw = Annotated[dict[str, Any], Body()]
"""Read by anthropic_request.read, whose 400 names the field as the caller wrote it (FastAPI's
would name the member of a union it tried too); the OpenAPI schema still declares the model."""


def declared(model: type[BaseModel], path: str) -> dict[str, Any]:
    """The request body `model` as the OpenAPI schema of POST `path`, its definitions referred
    to where they are written, inside it."""
    here = f"/paths/{path.replace('/', '~1')}/post/requestBody/content/application~1json/schema"
    schema = model.model_json_schema(ref_template=f"#{here}/$defs/{{model}}")
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


@router.post(
    "/messages",
    response_model=None,
    openapi_extra=declared(anthropic_request.MessagesRequest, "/v1/messages"),
)
async def messages(
    raw: Raw, request: Request, ctx: Ctx, caller: ApiKeyCallerDep, providers: Providers
) -> JSONResponse | StreamingResponse:
    """Metered like a chat: refusals come before any token is held or generated."""
    body = anthropic_request.read(anthropic_request.MessagesRequest, raw)
    chat_body = anthropic_wire.to_chat_body(body)
    sent = {name: request.headers[name] for name in DIALECT_HEADERS if name in request.headers}
    try:
        chat = await chat_flow.open_chat(
            ctx,
            providers,
            caller,
            chat_body.body,
            id_prefix="msg",
            route=Route.MESSAGES,
            native=NativeCall(MESSAGES, raw, sent),
        )
    except InvalidInput as refusal:
        raise chat_body.renamed(refusal) from None
    headers = {"request-id": chat.request_id}
    if native_flow.is_native(chat):
        return await native_flow.respond(
            ctx,
            chat,
            stream=bool(body.stream),
            answer_id=chat.request_id,
            error_event=_error,
            headers=headers,
        )
    stops = body.stop_sequences or ()
    if body.stream:
        stream = chat_flow.ChunkStream(ctx, chat)
        events = anthropic_events.stream_events(
            stream,
            message_id=chat.request_id,
            model=chat.model,
            input_tokens=chat.prompt_tokens,
            stop_sequences=stops,
        )
        return StreamingResponse(
            _sse(events),
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers,
            background=BackgroundTask(stream.close),  # settles even if never iterated
        )
    completion, booked = await chat_flow.whole(ctx, chat)
    message = anthropic_events.from_chat_completion(completion, stops)
    # The answer goes out first; the request then ends once its charge is written.
    return JSONResponse(message, headers=headers, background=BackgroundTask(asyncio.wait, [booked]))


@router.post(
    "/messages/count_tokens",
    openapi_extra=declared(anthropic_request.CountTokensRequest, "/v1/messages/count_tokens"),
)
async def count_tokens(
    raw: Raw, ctx: Ctx, caller: ApiKeyCallerDep, providers: Providers
) -> dict[str, int]:
    """Free: the prompt counted as a call's hold counts it; nothing is held or generated."""
    body = anthropic_request.read(anthropic_request.CountTokensRequest, raw)
    prompt = anthropic_wire.chat_prompt(body)
    try:
        chat_flow.read_body(prompt.body)  # the bounds a call's prompt meets
        counted = await prompt_tokens.count(ctx, providers, caller, prompt.body)
    except InvalidInput as refusal:
        raise prompt.renamed(refusal) from None
    return {"input_tokens": counted}


async def _sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """The named events. An upstream failing midway, or the ledger's database before the first
    piece, ends the stream with an `error` event and no `message_stop`."""
    try:
        async for event in events:
            yield anthropic_events.sse(event)
    except (ProviderError, OperationalError) as exc:
        yield anthropic_events.sse(_error(exc))


def _error(exc: ProviderError | OperationalError) -> dict[str, Any]:
    """Anthropic's `error` event for a stream whose upstream or database failed midway."""
    failed = from_provider(exc) if isinstance(exc, ProviderError) else database_unavailable(exc)
    return anthropic_errors.payload(failed)
