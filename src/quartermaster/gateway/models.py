"""GET /v1/models: the models the caller may use, in OpenAI's list format, with what each can
do (`capabilities`), so a client can tell before it sends tools, images or `n`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import catalog, model_offer

router = APIRouter(prefix="/v1", tags=["gateway"])


@router.get("/models")
async def list_models(ctx: Ctx, caller: Caller, providers: Providers) -> dict[str, Any]:
    specs = await model_offer.models_for(ctx, providers, caller)
    return {
        "object": "list",
        "data": [
            {
                "id": spec.name,
                "object": "model",
                "created": 0,
                "owned_by": spec.provider,
                "kind": spec.kind.value,
                "context_window": spec.context_window,
                "max_output_tokens": spec.max_output_tokens,
                "capabilities": {
                    **{flag: getattr(spec, flag) for flag in catalog.CAPABILITIES},
                    "max_choices": spec.max_choices,
                },
            }
            for spec in specs
        ],
    }
