"""Manage your organization → Models: the allow-list of models the members may use (none
ticked: every enabled model)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from quartermaster.domain.errors import InvalidInput
from quartermaster.http.deps import Ctx
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.enterprise import model_list, org_summary
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/org/models", include_in_schema=False)
Names = Annotated[list[str] | None, Form(max_length=500)]
"""The ticked boxes: none ticked sends no field at all (a list in the Annotated arm of a union
is not read from the form)."""


async def _render(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, status: int = 200, **extra: Any
) -> Response:
    allowed = await model_list.get(ctx, viewer.principal, org_id)
    context = {
        "active": "org",
        "tab": "models",
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "models": [m for m in await catalog.list_models(ctx) if m.enabled],
        "allowed": allowed,
        **extra,
    }
    return page(request, "org_models.html", context, status)


@router.get("")
async def models(request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg) -> Response:
    return await _render(request, ctx, viewer, org_id)


@router.post("")
async def save(
    request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg, model: Names = None
) -> Response:
    try:
        await model_list.set_allowed(ctx, viewer.principal, org_id, model or None)
    except InvalidInput as refused:
        return await _render(request, ctx, viewer, org_id, 400, error=refused.message)
    notice = "Every enabled model is open to members." if not model else "Allow-list saved."
    return await _render(request, ctx, viewer, org_id, notice=notice)
