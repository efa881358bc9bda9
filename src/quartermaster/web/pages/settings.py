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
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/settings", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]
REFILL_BUNDLES = {
    TokenKind.INFERENCE: INFERENCE_BUNDLE_TOKENS,
    TokenKind.TRAINING: TRAINING_BUNDLE_TOKENS,
}


async def _tokens_context(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    window = await token_window.window(ctx, viewer.principal)
    try:
        months = (await token_stats.my_usage(ctx, viewer.principal))["months"]
    except DomainError:
        months = []
    enterprise = window["source"] == "enterprise"
    return {
        "tab": "tokens",
        "active": "settings",
        "window": window,
        "months": months,
        "plans": [] if enterprise else [plans.public(p) for p in await plans.list_plans(ctx)],
        "requests": await token_requests.mine(ctx, viewer.principal) if enterprise else [],
    }


async def _tokens_page(request: Request, ctx: Context, viewer: Viewer, **messages: str) -> Response:
    context = await _tokens_context(ctx, viewer)
    status = 400 if messages.get("error") else 200
    return page(request, "settings_tokens.html", {**context, **messages}, status)


@router.get("")
async def tokens(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    return await _tokens_page(request, ctx, viewer)


@router.post("/token-requests")
async def ask_tokens(
    request: Request, ctx: Ctx, viewer: SignedIn, kind: Text, amount: Text, reason: Text
) -> Response:
    try:
        asked = await token_requests.ask(
            ctx, viewer.principal, TokenKind(kind), int(amount), reason
        )
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


@router.post("/refills")
async def buy_refill(request: Request, ctx: Ctx, viewer: SignedIn, kind: Text) -> Response:
    try:
        chosen = TokenKind(kind)
        payments = request.app.state.payments
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
