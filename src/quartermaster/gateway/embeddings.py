"""POST /v1/embeddings, metered as training (embedding) tokens."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from quartermaster.gateway.deps import MeteredCallerDep
from quartermaster.gateway.schemas import EmbeddingRequest
from quartermaster.http.deps import Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import metering

router = APIRouter(prefix="/v1", tags=["gateway"])


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
    return vector


@router.post("/embeddings", response_model=None)
async def embeddings(
    body: EmbeddingRequest, ctx: Ctx, caller: MeteredCallerDep, providers: Providers
) -> JSONResponse:
    """Metered embeddings; `usage.tokens_charged` is what they cost in platform tokens."""
    answer = await metering.embed(ctx, providers, caller, body.model, body.texts())
    response = {
        "object": "list",
        "model": body.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(answer.vectors)
        ],
        "usage": {
            "prompt_tokens": answer.tokens,
            "total_tokens": answer.tokens,
            "tokens_charged": answer.tokens_charged,
        },
    }
    # As for a chat: the answer goes out first; the request then ends once it is written.
    return JSONResponse(response, background=BackgroundTask(asyncio.wait, [answer.booked]))
