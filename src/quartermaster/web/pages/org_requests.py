"""Manage your organization → Token requests: approve (possibly a different amount) or deny with
a note, and the org's auto-approval rule that decides small requests at once."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.requests import AutoApprovalRule, RequestStatus
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import org_summary, token_requests
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.pages.org_members import whole
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/org", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=40)]


async def _render(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, status: int = 200, **extra: Any
) -> Response:
    found = await token_requests.list_for_org(ctx, viewer.principal, org_id)
    pending = RequestStatus.PENDING.value
    context = {
        "active": "org",
        "tab": "requests",
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "pending": [r for r in found if r["status"] == pending],
        "decided": [r for r in found if r["status"] != pending][:100],
        "rule": await token_requests.get_rule(ctx, viewer.principal, org_id),
        **extra,
    }
    return page(request, "org_requests.html", context, status)


@router.get("/requests")
async def requests(request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg) -> Response:
    return await _render(request, ctx, viewer, org_id)


@router.post("/requests/{request_id}/decide")
async def decide(
    request: Request,
    request_id: int,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    decision: Short = "",
    amount: Short = "",
    note: Text = "",
) -> Response:
    """`decision` is the button pressed: approve (the amount typed, or as asked) or deny."""
    try:
        granted = whole(amount, "amount") if amount.strip() else None
        choice = token_requests.Decision(decision == "approve", granted, note)
        done = await token_requests.decide(ctx, viewer.principal, org_id, request_id, choice)
    except (InvalidInput, Conflict) as refused:
        return await _render(request, ctx, viewer, org_id, 400, error=refused.message)
    notice = f"Request {request_id} {done['status']}."
    return await _render(request, ctx, viewer, org_id, notice=notice)


@router.post("/auto-approval")
async def set_rule(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    max_tokens: Short = "0",
    max_pool_pct: Short = "0",
    enabled: Short = "",
) -> Response:
    try:
        percent = Decimal(max_pool_pct.strip() or "0")
        rule = AutoApprovalRule(enabled == "yes", whole(max_tokens or "0", "max_tokens"), percent)
        await token_requests.set_rule(ctx, viewer.principal, org_id, rule)
    except InvalidOperation:
        error = "max share of the pool must be a number between 0 and 100"
        return await _render(request, ctx, viewer, org_id, 400, error=error)
    except InvalidInput as refused:
        return await _render(request, ctx, viewer, org_id, 400, error=refused.message)
    return await _render(request, ctx, viewer, org_id, notice="Auto-approval rule saved.")
