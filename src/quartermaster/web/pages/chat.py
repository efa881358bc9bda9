"""The chat page: pick a model, an optional persona and datasets; answers stream from /v1 with
the page's session, and each answer shows the tokens it was charged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quartermaster.domain.types import ModelKind
from quartermaster.http.deps import Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import datasets, model_offer
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn

router = APIRouter(include_in_schema=False)


@router.get("/chat")
async def chat(request: Request, ctx: Ctx, viewer: SignedIn, providers: Providers) -> Response:
    models = await model_offer.models_for(ctx, providers, viewer.principal)
    context = {
        "active": "chat",
        "models": [m for m in models if m.kind is ModelKind.CHAT],
        "datasets": await datasets.list_datasets(ctx, viewer.principal),
    }
    return page(request, "chat.html", context)
