"""Settings (the gear, bottom left): tokens, security, API keys, login history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.errors import DomainError
from quartermaster.domain.pricing import INFERENCE_BUNDLE_TOKENS, TRAINING_BUNDLE_TOKENS
from quartermaster.domain.types import Term, TokenKind
from quartermaster.http.deps import Ctx
from quartermaster.services import plans
from quartermaster.services.context import Context
from quartermaster.services.enterprise import token_requests
from quartermaster.services.identity import api_keys, logins
from quartermaster.services.metrics import token_stats, token_window
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import PaymentProvider
from quartermaster.web.pages.org_members import whole
from quartermaster.web.render import money, page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/settings", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]
REFILL_BUNDLES = {
    TokenKind.INFERENCE: INFERENCE_BUNDLE_TOKENS,
    TokenKind.TRAINING: TRAINING_BUNDLE_TOKENS,
}


async def _tokens_context(ctx: Context, viewer: Viewer, online: bool) -> dict[str, Any]:
    window = await token_window.window(ctx, viewer.principal)
    try:
        months = (await token_stats.my_usage(ctx, viewer.principal))["months"]
    except DomainError:
        months = []
    shown = {"tab": "tokens", "active": "settings", "window": window, "months": months}
    if window["source"] == "enterprise":
        return shown | {"requests": await token_requests.mine(ctx, viewer.principal)}
    offer = await plans.list_plans(ctx)
    current = next((p for p in offer if p.name == window["plan"]), None)
    return shown | {
        "plans": [plans.public(p) for p in offer],
        "due": current.price(Term(str(window["term"]))) if current else None,
        "pay_online": online,
        "payments": await subscriptions.my_payments(ctx, viewer.principal),
        "refills_offered": [
            (kind, tokens, subscriptions.refill_price(ctx.prices, kind, tokens))
            for kind, tokens in REFILL_BUNDLES.items()
        ],
        "currency": ctx.prices.currency,
    }


async def _tokens_page(request: Request, ctx: Context, viewer: Viewer, **messages: str) -> Response:
    online = _payments(request).name != "manual"
    context = await _tokens_context(ctx, viewer, online)
    status = 400 if messages.get("error") else 200
    return page(request, "settings_tokens.html", {**context, **messages}, status)


def _payments(request: Request) -> PaymentProvider:
    provider: PaymentProvider = request.app.state.payments
    return provider


@router.get("")
async def tokens(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    return await _tokens_page(request, ctx, viewer)


@router.post("/token-requests")
async def ask_tokens(
    request: Request, ctx: Ctx, viewer: SignedIn, kind: Text, amount: Text, reason: Text
) -> Response:
    try:
        tokens = whole(amount, "amount")
        asked = await token_requests.ask(ctx, viewer.principal, TokenKind(kind), tokens, reason)
    except (DomainError, ValueError) as refused:
        return await _tokens_page(request, ctx, viewer, error=_message(refused))
    outcome = "approved at once" if asked["status"] == "approved" else "sent to your admins"
    return await _tokens_page(request, ctx, viewer, notice=f"Your request was {outcome}.")


@router.post("/plan")
async def switch_plan(
    request: Request, ctx: Ctx, viewer: SignedIn, plan: Text, term: Text
) -> Response:
    try:
        await subscriptions.change_plan(ctx, viewer.principal, plan, Term(term))
    except (DomainError, ValueError) as refused:
        return await _tokens_page(request, ctx, viewer, error=_message(refused))
    return await _tokens_page(request, ctx, viewer, notice=f"You are now on the {plan} plan.")


@router.post("/plan/pay")
async def pay_plan(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    """Pay the plan's current term through the payment provider; the page then lists the
    payment with its reference, as the operator's pages list a purchase."""
    try:
        paid = await subscriptions.pay_current(ctx, viewer.principal, _payments(request))
    except DomainError as refused:
        return await _tokens_page(request, ctx, viewer, error=refused.message)
    months = paid.period_from
    if paid.period_to != paid.period_from:
        months += f" to {paid.period_to}"
    notice = f"Paid {money(paid.amount)} for {months} (reference {paid.reference})."
    return await _tokens_page(request, ctx, viewer, notice=notice)


@router.post("/refills")
async def buy_refill(request: Request, ctx: Ctx, viewer: SignedIn, kind: Text) -> Response:
    try:
        chosen = TokenKind(kind)
        payments = _payments(request)
        await subscriptions.refill(ctx, viewer.principal, chosen, REFILL_BUNDLES[chosen], payments)
    except (DomainError, ValueError) as refused:
        return await _tokens_page(request, ctx, viewer, error=_message(refused))
    return await _tokens_page(request, ctx, viewer, notice="Refill added for this month.")


def _message(error: Exception) -> str:
    return error.message if isinstance(error, DomainError) else "that value is not valid"


@router.get("/keys")
async def keys(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    rows = await api_keys.list_keys(ctx, viewer.principal)
    return page(request, "settings_keys.html", {"tab": "keys", "active": "settings", "keys": rows})


@router.post("/keys")
async def create_key(request: Request, ctx: Ctx, viewer: SignedIn, name: Text) -> Response:
    context: dict[str, Any] = {"tab": "keys", "active": "settings"}
    try:
        issued = await api_keys.create(ctx, viewer.principal, name)
        context["new_key"] = issued.secret
    except DomainError as refused:
        context["error"] = refused.message
    context["keys"] = await api_keys.list_keys(ctx, viewer.principal)
    return page(request, "settings_keys.html", context, 400 if "error" in context else 201)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: int, ctx: Ctx, viewer: SignedIn) -> Response:
    await api_keys.revoke(ctx, viewer.principal, key_id)
    return RedirectResponse("/settings/keys", status_code=303)


@router.get("/logins")
async def login_history(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    rows = await logins.history(ctx, viewer.principal, None, 100)
    return page(
        request, "settings_logins.html", {"tab": "logins", "active": "settings", "rows": rows}
    )
