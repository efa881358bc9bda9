"""Individual plans: /api/plans (the offer), /api/me/plan (your window, plan, payments,
refills), and the operator's /api/operator/plans and /api/operator/users/{id}/plan…"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from quartermaster.api.operator import operator_only
from quartermaster.domain.types import Term, TokenKind
from quartermaster.http.deps import Caller, Ctx
from quartermaster.services import plans
from quartermaster.services.metrics import token_window
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import PaymentProvider, RecordedPayment

router = APIRouter(tags=["plans"])
operator = APIRouter(prefix="/api/operator", tags=["plans"], dependencies=[Depends(operator_only)])
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), max_digits=14, decimal_places=2)]
Tokens = Annotated[int, Field(gt=0, le=10**12)]


def payment_provider(request: Request) -> PaymentProvider:
    provider: PaymentProvider = request.app.state.payments
    return provider


Payments = Annotated[PaymentProvider, Depends(payment_provider)]


class PlanChoice(BaseModel):
    plan: str = Field(max_length=64)
    term: Term = Term.MONTHLY


class RefillBody(BaseModel):
    kind: TokenKind
    tokens: Tokens


class PlanBody(BaseModel):
    monthly_inference_tokens: int = Field(ge=0, le=10**12)
    monthly_training_tokens: int = Field(ge=0, le=10**12)
    price_monthly: Money
    price_yearly: Money
    models_allowed: list[str] | None = Field(default=None, max_length=500)
    active: bool = True
    is_default: bool = False


class RecordedRefill(RefillBody):
    reference: str = Field(min_length=1, max_length=100)


class PaymentBody(BaseModel):
    first_period: str = Field(pattern=r"^\d{4}-\d{2}$")
    amount: Money
    reference: str = Field(min_length=1, max_length=100)


@router.get("/api/plans")
async def list_plans(ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    """The plans on offer, cheapest first."""
    return [plans.public(terms) for terms in await plans.list_plans(ctx)]


@router.get("/api/me/plan")
async def my_window(ctx: Ctx, caller: Caller) -> dict[str, object]:
    """Your plan (or org allocation), caps, used, left, reset date and refill history."""
    return await token_window.window(ctx, caller)


@router.post("/api/me/plan")
async def choose_plan(body: PlanChoice, ctx: Ctx, caller: Caller) -> dict[str, str]:
    """Switch plan now; the new monthly caps apply to this month at once (not pro-rated)."""
    return await subscriptions.change_plan(ctx, caller, body.plan, body.term)


@router.post("/api/me/plan/pay")
async def pay(ctx: Ctx, caller: Caller, payments: Payments) -> dict[str, str]:
    """Pay for your plan's current term through the configured payment provider."""
    paid = await subscriptions.pay_current(ctx, caller, payments)
    return {"from": paid.period_from, "to": paid.period_to, "amount": str(paid.amount)}


@router.post("/api/me/plan/refills", status_code=201)
async def buy_refill(
    body: RefillBody, ctx: Ctx, caller: Caller, payments: Payments
) -> dict[str, object]:
    """Extra tokens for this month only (whole bundles, monthly bundle price)."""
    return await subscriptions.refill(ctx, caller, body.kind, body.tokens, payments)


@operator.put("/plans/{name}")
async def save_plan(name: str, body: PlanBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    terms = plans.parse_terms({"name": name, **body.model_dump()})
    return plans.public(await plans.save(ctx, caller, terms))


@operator.post("/users/{user_id}/plan")
async def set_user_plan(user_id: int, body: PlanChoice, ctx: Ctx, caller: Caller) -> dict[str, str]:
    return await subscriptions.change_plan(ctx, caller, body.plan, body.term, user_id)


@operator.post("/users/{user_id}/plan-payments", status_code=201)
async def record_payment(
    user_id: int, body: PaymentBody, ctx: Ctx, caller: Caller
) -> dict[str, str]:
    """Record money received for a user's plan, from `first_period` for one term."""
    paid = await subscriptions.record_payment(
        ctx, caller, user_id, body.first_period, body.amount, body.reference
    )
    return {"from": paid.period_from, "to": paid.period_to, "amount": str(paid.amount)}


@operator.post("/users/{user_id}/refills", status_code=201)
async def record_refill(
    user_id: int, body: RecordedRefill, ctx: Ctx, caller: Caller
) -> dict[str, object]:
    """Record a refill a user paid for outside Quartermaster (its reference is the receipt)."""
    return await subscriptions.refill(
        ctx, caller, body.kind, body.tokens, RecordedPayment(body.reference), user_id
    )
