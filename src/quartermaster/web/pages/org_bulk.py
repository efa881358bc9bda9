"""Manage your organization → Bulk allocation: a rule (even split, percentage of the pool or a
fixed amount, with optional bounds) is previewed member by member, and Apply applies exactly
the plan that was shown; if anything changed meanwhile the new plan is shown instead."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from quartermaster.domain.allocation import BulkRule, Strategy
from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.types import TokenKind
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import bulk_allocation, org_summary
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.pages.org_members import whole
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/org/allocations", include_in_schema=False)
Field = Annotated[str, Form(max_length=40)]
BLANK = {"kind": "inference", "strategy": "even", "amount": "", "percent": "", "minimum": ""}
BLANK |= {"maximum": ""}


def _optional(text: str, field: str) -> int | None:
    return whole(text, field) if text.strip() else None


def _percent(text: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInput("percent must be a number, e.g. 12.5", param="percent") from None


def rule_of(typed: dict[str, str]) -> BulkRule:
    """The rule as typed into the form; bad values are refused like the API refuses them."""
    if typed["kind"] not in {k.value for k in TokenKind}:
        raise InvalidInput("kind is inference or training", param="kind")
    if typed["strategy"] not in {s.value for s in Strategy}:
        raise InvalidInput("strategy is even, percentage or fixed", param="strategy")
    return BulkRule(
        TokenKind(typed["kind"]),
        Strategy(typed["strategy"]),
        _optional(typed["amount"], "amount"),
        _percent(typed["percent"]),
        _optional(typed["minimum"], "minimum"),
        _optional(typed["maximum"], "maximum"),
    )


async def _render(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, status: int = 200, **extra: Any
) -> Response:
    context = {
        "active": "org",
        "tab": "bulk",
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "typed": BLANK,
        "plan": None,
        **extra,
    }
    return page(request, "org_bulk.html", context, status)


@router.get("")
async def bulk(request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg) -> Response:
    return await _render(request, ctx, viewer, org_id)


def _typed(
    kind: str, strategy: str, amount: str, percent: str, minimum: str, maximum: str
) -> dict[str, str]:
    return {
        "kind": kind,
        "strategy": strategy,
        "amount": amount,
        "percent": percent,
        "minimum": minimum,
        "maximum": maximum,
    }


@router.post("/preview")
async def preview(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    kind: Field = "inference",
    strategy: Field = "even",
    amount: Field = "",
    percent: Field = "",
    minimum: Field = "",
    maximum: Field = "",
) -> Response:
    typed = _typed(kind, strategy, amount, percent, minimum, maximum)
    try:
        plan = await bulk_allocation.preview(ctx, viewer.principal, org_id, rule_of(typed))
    except InvalidInput as refused:
        return await _render(request, ctx, viewer, org_id, 400, typed=typed, error=refused.message)
    return await _render(request, ctx, viewer, org_id, typed=typed, plan=plan)


@router.post("/apply")
async def apply(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    plan_hash: Annotated[str, Form(max_length=64)] = "",
    kind: Field = "inference",
    strategy: Field = "even",
    amount: Field = "",
    percent: Field = "",
    minimum: Field = "",
    maximum: Field = "",
) -> Response:
    """Applies the plan whose hash the preview showed, or shows the plan as it is now."""
    typed = _typed(kind, strategy, amount, percent, minimum, maximum)
    try:
        done = await bulk_allocation.apply(ctx, viewer.principal, org_id, rule_of(typed), plan_hash)
    except Conflict as changed:
        plan = changed.details.get("plan")
        return await _render(
            request, ctx, viewer, org_id, 409, typed=typed, plan=plan, error=changed.message
        )
    except InvalidInput as refused:
        return await _render(request, ctx, viewer, org_id, 400, typed=typed, error=refused.message)
    notice = f"Applied: {len(done['rows'])} members' {done['kind']} caps set as previewed."
    return await _render(request, ctx, viewer, org_id, typed=typed, notice=notice)
