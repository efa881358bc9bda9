"""POST /v1/embeddings, metered as training (embedding) tokens."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter

from quartermaster.api.deps import Caller, Ctx
from quartermaster.gateway.deps import Providers
from quartermaster.gateway.schemas import EmbeddingRequest
from quartermaster.services import metering

router = APIRouter(prefix="/v1", tags=["gateway"])


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
    return vector


@router.post("/embeddings")
async def embeddings(
    body: EmbeddingRequest, ctx: Ctx, caller: Caller, providers: Providers
) -> dict[str, Any]:
    answer = await metering.embed(ctx, providers, caller, body.model, body.texts())
    return {
        "object": "list",
        "model": body.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(answer.vectors)
        ],
        "usage": {"prompt_tokens": answer.tokens, "total_tokens": answer.tokens},
    }
