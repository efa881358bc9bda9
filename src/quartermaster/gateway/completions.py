"""POST /v1/completions, OpenAI's legacy text completion, whole or streamed: metered on the one
path every chat takes (services/metering.py, gateway/chat_flow.py). The body goes to the
upstream's `completions` as sent, and its `text_completion` answer comes back as it came."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from quartermaster.domain.routes import Route
from quartermaster.gateway import chat
from quartermaster.gateway.completion_request import CompletionRequest
from quartermaster.gateway.deps import MeteredCallerDep
from quartermaster.http.deps import Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import metering

router = APIRouter(prefix="/v1", tags=["gateway"])
NOT_FORWARDED = frozenset({"model", "stream"})
"""What the gateway sets itself; every other field goes to the upstream as sent."""


@router.post("/completions", response_model=None)
async def completions(
    body: CompletionRequest,
    request: Request,
    ctx: Ctx,
    caller: MeteredCallerDep,
    providers: Providers,
) -> JSONResponse | StreamingResponse:
    """Metered completion. Refusals (quota, status, bad input, what the model cannot do) come
    before any token is held or generated."""
    call = call_of(body, await request.json())
    prepared = await metering.prepare_chat(ctx, providers, caller, call, route=Route.COMPLETIONS)
    return await chat.respond(ctx, prepared, body)


def call_of(body: CompletionRequest, raw: dict[str, Any]) -> metering.ChatCall:
    """The completion as metering reads it; upstream, its output limit is always explicit."""
    limit = body.output_limit()
    forwarded = {name: value for name, value in raw.items() if name not in NOT_FORWARDED}
    return metering.ChatCall(
        body.model,
        forwarded | {"max_tokens": limit},
        limit,
        body.temperature,
        body.stops(),
        sampling=body.sampling(),
        asks=body.asks(),
        id_prefix="cmpl",
        completion=body.completion(),
    )
