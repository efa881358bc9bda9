"""Operator → one enterprise account: what it bought (subscription lines and top-ups), its
balance this month, and forms to record a subscription line or a top-up."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.types import PurchaseKind, Term
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import org_summary, purchases
from quartermaster.web.org_scope import OperatorViewer
from quartermaster.web.pages.org_members import whole
from quartermaster.web.render import money, page
from quartermaster.web.session import Viewer

router = APIRouter(prefix="/operator/orgs/{org_id}", include_in_schema=False)
Short = Annotated[str, Form(max_length=100)]


async def _render(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, status: int = 200, **extra: Any
) -> Response:
    context = {
        "active": "operator",
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "lines": await purchases.list_purchases(ctx, viewer.principal, org_id),
        **extra,
    }
    return page(request, "operator_org.html", context, status)


@router.get("")
async def account(request: Request, org_id: int, ctx: Ctx, viewer: OperatorViewer) -> Response:
    return await _render(request, ctx, viewer, org_id)


def _order(
    inference_tokens: str, training_tokens: str, price: str, reference: str, term: str, terms: str
) -> purchases.Order:
    if term not in {t.value for t in Term}:
        raise InvalidInput("term is monthly or yearly", param="term")
    try:
        typed = price.replace(",", "").strip()  # separators, as the page shows prices
        negotiated = Decimal(typed) if typed else None
    except InvalidOperation:
        raise InvalidInput("price must be a number, e.g. 850.00", param="price") from None
    return purchases.Order(
        whole(inference_tokens or "0", "inference_tokens"),
        whole(training_tokens or "0", "training_tokens"),
        Term(term),
        whole(terms or "1", "terms"),
        price=negotiated,
        reference=reference.strip() or None,
    )


@router.post("/{kind}")
async def buy(
    request: Request,
    org_id: int,
    kind: str,
    ctx: Ctx,
    viewer: OperatorViewer,
    inference_tokens: Short = "0",
    training_tokens: Short = "0",
    price: Short = "",
    reference: Short = "",
    term: Short = "yearly",
    terms: Short = "1",
) -> Response:
    """`subscriptions` (counts for every month of its terms) or `topups` (this month only)."""
    chosen = {"subscriptions": PurchaseKind.SUBSCRIPTION, "topups": PurchaseKind.TOPUP}.get(kind)
    if chosen is None:
        raise InvalidInput("record a subscription or a top-up", param="kind")
    try:
        order = _order(inference_tokens, training_tokens, price, reference, term, terms)
        line = await purchases.buy(ctx, viewer.principal, org_id, chosen, order)
    except (InvalidInput, Conflict) as refused:
        return await _render(request, ctx, viewer, org_id, 400, error=refused.message, kind=kind)
    notice = f"Recorded: {line['kind']} of {line['inference_tokens']:,} inference tokens"
    notice += f" and {line['training_tokens']:,} training tokens for "
    notice += f"{money(line['price'], line['currency'])}."
    return await _render(request, ctx, viewer, org_id, notice=notice)
